"""Closed connections' cyclic garbage is collected (gateway/delivery/memory.py): the policy on real
garbage, and the real server collecting after sockets close."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import weakref

import pytest

from gateway.delivery import memory
from tests.gateway.gateway_process import TOKEN, GatewayProcess, ahttp_get, connected, wait_until


class Node:
    """A stand-in for a connection's object graph: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


def _cyclic_garbage() -> weakref.ref:
    node = Node()
    ref = weakref.ref(node)
    del node
    return ref


@pytest.fixture
def young_gc_off():
    """Only the collector under test may collect (a young collection could beat it)."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_nothing_is_collected_before_enough_sockets_closed(young_gc_off):
    collector = memory.Collector(after_ended=3, max_delay=3600)
    ref = _cyclic_garbage()
    for _ in range(2):
        collector.ended()
    assert collector.check() is False
    assert ref() is not None, "reference counting alone freed a cycle?"
    assert collector.collections == 0


def test_enough_closed_sockets_trigger_a_full_collection(young_gc_off):
    collector = memory.Collector(after_ended=3, max_delay=3600)
    refs = [_cyclic_garbage() for _ in range(10)]
    for _ in range(3):
        collector.ended()
    assert collector.check() is True
    assert all(r() is None for r in refs)
    assert collector.collections == 1 and collector.freed >= 10 and collector.seconds > 0
    assert collector.ended_since == 0
    assert collector.check() is False  # nothing closed since


async def test_a_due_collection_runs_shortly_after_the_burst_without_waiting_for_a_check(
    young_gc_off,
):
    collector = memory.Collector(
        asyncio.get_running_loop(), after_ended=3, max_delay=3600, settle=0.05
    )
    refs = [_cyclic_garbage() for _ in range(5)]
    for _ in range(5):  # one burst: one collection
        collector.ended()
    assert collector.collections == 0 and refs[0]() is not None
    await asyncio.sleep(0.3)
    assert collector.collections == 1
    assert all(r() is None for r in refs)


def test_ended_runs_count_a_tenth_of_a_closed_socket(young_gc_off):
    """A full collection stalls the loop; an ended run leaves little garbage."""
    collector = memory.Collector(after_ended=3, max_delay=3600)
    for _ in range(25):
        collector.ended(memory.RUN)
    assert collector.check() is False
    for _ in range(6):
        collector.ended(memory.RUN)
    assert collector.check() is True


def test_a_few_closed_sockets_are_collected_after_the_delay(young_gc_off):
    collector = memory.Collector(after_ended=1000, max_delay=60)
    ref = _cyclic_garbage()
    collector.ended()
    assert collector.check() is False
    collector.last -= 61  # a minute has passed
    assert collector.check() is True
    assert ref() is None


def test_no_closed_socket_no_collection_however_long(young_gc_off):
    collector = memory.Collector(after_ended=1, max_delay=0)
    collector.last -= 3600
    assert collector.check() is False


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.mark.e2e
async def test_gateway_frees_closed_connections(gateway: GatewayProcess) -> None:
    closed = memory.AFTER_ENDED + 20
    async with contextlib.AsyncExitStack() as stack:
        for start in range(0, closed, 50):
            batch = await asyncio.gather(
                *(
                    stack.enter_async_context(connected(gateway, name=f"c{i}"))
                    for i in range(start, min(closed, start + 50))
                )
            )
            await asyncio.gather(*(client.ping_ok() for client in batch))
    # all closed within a moment: one collection for the burst

    async def collected():
        _, _, body = await ahttp_get(
            f"{gateway.http_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        text = body.decode()
        return text if _metric(text, "wingman_gc_collections_total") >= 1 else None

    text = await wait_until(collected, timeout=5, what="a full collection")
    # Each closed connection had left cyclic garbage behind; the collection freed it.
    assert _metric(text, "wingman_gc_objects_freed_total") >= 10 * closed, text
    assert _metric(text, "wingman_gc_seconds_total") > 0
