"""The outbox to the other processes: envelopes that queue up while a send is in flight
travel together, in order, on the real channel layers; a publisher faster than the layer
is held at the high-water mark."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from gateway.delivery import outbox as outbox_module
from gateway.delivery.encoded import ENVELOPE_TYPE
from gateway.delivery.outbox import Outbox, batch_envelope, unbatch
from gateway.state.layer import RedisChannelLayer as RedisLayer
from tests.conftest import REDIS_URL, delete_redis_prefix, require_redis


def _envelope(n: int) -> dict:
    return {"type": ENVELOPE_TYPE, "event": "agent", "payload": f'{{"n":{n}}}', "origin": "x"}


async def _received(layer, channel: str, count: int) -> tuple[list[dict], int]:
    """``count`` envelopes from ``channel`` and how many layer messages carried them (read
    as a seat reads them: ``receive_many`` where the layer has it)."""
    envelopes: list[dict] = []
    messages = 0
    receive_many = getattr(layer, "receive_many", None)
    while len(envelopes) < count:
        if receive_many is None:
            got = [await asyncio.wait_for(layer.receive(channel), 5)]
        else:
            got = await asyncio.wait_for(receive_many(channel), 5)
        messages += len(got)
        for message in got:
            envelopes.extend(unbatch(message))
    return envelopes, messages


async def _deliveries(outbox: Outbox, *reads) -> list[tuple[list[dict], int]]:
    """Run ``outbox`` until each ``(layer, channel, count)`` of ``reads`` got its envelopes:
    :func:`_received` of each."""
    task = await _run(outbox)
    try:
        return [await _received(layer, channel, count) for layer, channel, count in reads]
    finally:
        task.cancel()


async def _run(outbox: Outbox) -> asyncio.Task:
    task = asyncio.create_task(outbox.run())
    await asyncio.sleep(0)
    return task


async def test_envelopes_queued_together_leave_as_one_message_in_order() -> None:
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    outbox = Outbox(layer)
    for n in range(50):
        outbox.put_group("g", _envelope(n))
    task = await _run(outbox)
    try:
        envelopes, messages = await _received(layer, channel, 50)
    finally:
        task.cancel()
    assert [e["payload"] for e in envelopes] == [f'{{"n":{n}}}' for n in range(50)]
    assert messages == 1


async def test_targets_interleaved_keep_the_order_of_sends() -> None:
    layer = InMemoryChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("ga", a)
    await layer.group_add("gb", a)
    await layer.group_add("gb", b)
    outbox = Outbox(layer)
    for group, n in (("ga", 0), ("ga", 1), ("gb", 2), ("ga", 3)):
        outbox.put_group(group, _envelope(n))
    outbox.put_channel(b, _envelope(4))
    (on_a, messages_a), (on_b, messages_b) = await _deliveries(outbox, (layer, a, 4), (layer, b, 2))
    assert [e["payload"] for e in on_a] == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']
    assert messages_a == 3  # [0, 1], [2], [3]
    assert [e["payload"] for e in on_b] == ['{"n":2}', '{"n":4}']
    assert messages_b == 2


def test_a_single_envelope_travels_as_itself() -> None:
    one = _envelope(1)
    assert batch_envelope([one]) is one
    assert unbatch(one) == [one]
    both = batch_envelope([one, _envelope(2)])
    assert both["type"] == ENVELOPE_TYPE and unbatch(both) == [one, _envelope(2)]


@pytest.mark.redis
async def test_a_fast_publisher_reaches_another_process_in_order_on_redis() -> None:
    """What a worker's run does: publish as fast as it can, yielding via ``room()``."""
    require_redis()
    prefix = f"wmtest-{uuid.uuid4().hex[:8]}"
    sender = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    receiver = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    try:
        channel = await receiver.new_channel()
        await receiver.group_add("topic", channel)
        outbox = Outbox(sender)
        task = await _run(outbox)
        count = 3000
        reading = asyncio.create_task(_received(receiver, channel, count))
        for n in range(count):
            outbox.put_group("topic", _envelope(n))
            await outbox.room()
        envelopes, messages = await asyncio.wait_for(reading, 30)
        task.cancel()
    finally:
        await sender.close_pools()
        await receiver.close_pools()
        delete_redis_prefix(prefix)
    assert [e["payload"] for e in envelopes] == [f'{{"n":{n}}}' for n in range(count)]
    assert messages < count  # some travelled together


class _GatedLayer(InMemoryChannelLayer):
    """The real in-memory layer, whose sends wait until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def group_send(self, group, message):
        await self.gate.wait()
        await super().group_send(group, message)


async def test_a_publisher_waits_at_the_high_water_mark(monkeypatch) -> None:
    monkeypatch.setattr(outbox_module, "HIGH_WATER", 20)
    monkeypatch.setattr(outbox_module, "LOW_WATER", 5)
    monkeypatch.setattr(outbox_module, "MAX_BATCH", 4)
    layer = _GatedLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    outbox = Outbox(layer)
    task = await _run(outbox)
    try:
        for n in range(25):  # the sender holds 4 at the gate, 21 wait
            outbox.put_group("g", _envelope(n))
        await asyncio.sleep(0.01)
        assert outbox.queue.qsize() == 21
        waiting = asyncio.create_task(outbox.room())
        await asyncio.sleep(0.05)
        assert not waiting.done(), "above the high-water mark the publisher waits"
        layer.gate.set()
        await asyncio.wait_for(waiting, 5)
        assert outbox.queue.qsize() <= 5
        envelopes, _ = await _received(layer, channel, 25)
    finally:
        task.cancel()
    assert [e["payload"] for e in envelopes] == [f'{{"n":{n}}}' for n in range(25)]


@pytest.mark.redis
async def test_many_topics_reach_each_process_as_one_message_in_order_on_redis() -> None:
    """A room swarm: envelopes for 100 topics queued together reach each other process as
    ONE channel-layer message with just its topics' envelopes, in order; the sender's own
    channel (a member of every group) gets nothing."""
    require_redis()
    prefix = f"wmtest-{uuid.uuid4().hex[:8]}"
    sender, a, b = (RedisLayer(hosts=[REDIS_URL], prefix=prefix) for _ in range(3))
    try:
        own, chan_a, chan_b = (
            await sender.new_channel(),
            await a.new_channel(),
            await b.new_channel(),
        )
        for topic in range(100):
            await sender.group_add(f"t{topic}", own)
            await (a if topic % 2 else b).group_add(f"t{topic}", chan_a if topic % 2 else chan_b)
            if topic % 10 == 0:
                await b.group_add(f"t{topic}", chan_b)  # some topics on both
        outbox = Outbox(sender)
        outbox.own_channel = own
        for n in range(200):
            outbox.put_group(f"t{n % 100}", {**_envelope(n), "topic": f"t{n % 100}"})
        task = await _run(outbox)
        try:
            got_a, messages_a = await _received(a, chan_a, 100)
            expected_b = [n for n in range(200) if n % 2 == 0 or n % 10 == 0]
            got_b, messages_b = await _received(b, chan_b, len(expected_b))
            sender.brpop_timeout = 1
            assert await sender.receive_many(own) == []  # the sender's own channel: nothing
        finally:
            task.cancel()
    finally:
        for layer in (sender, a, b):
            await layer.close_pools()
        delete_redis_prefix(prefix)
    assert [e["payload"] for e in got_a] == [f'{{"n":{n}}}' for n in range(200) if n % 2]
    assert [e["payload"] for e in got_b] == [f'{{"n":{n}}}' for n in expected_b]
    assert (messages_a, messages_b) == (1, 1)


class _SlowLayer(InMemoryChannelLayer):
    """The real in-memory layer, each send taking a Redis round trip's time."""

    async def group_send(self, group, message):
        await asyncio.sleep(0.002)
        await super().group_send(group, message)


async def test_a_burst_leaves_at_most_once_per_send_interval_a_lone_envelope_at_once(
    monkeypatch,
) -> None:
    """A publisher streaming faster than the layer's sends: batches leave at most every
    SEND_INTERVAL_SECONDS (each message costs the sender, Redis and the receivers whatever
    its size), in order; an envelope after a quiet spell leaves at once."""
    monkeypatch.setattr(outbox_module, "SEND_INTERVAL_SECONDS", 0.05)
    layer = _SlowLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    outbox = Outbox(layer)
    task = await _run(outbox)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outbox.put_group("g", _envelope(0))  # quiet until now: leaves at once
        first, _ = await _received(layer, channel, 1)
        assert loop.time() - started < 0.04
        count = 0
        while loop.time() - started < 0.3:  # a burst: one envelope every ~0.5 ms
            count += 1
            outbox.put_group("g", _envelope(count))
            await asyncio.sleep(0.0005)
        envelopes, messages = await _received(layer, channel, count)
    finally:
        task.cancel()
    assert [e["payload"] for e in first + envelopes] == [f'{{"n":{n}}}' for n in range(count + 1)]
    assert count > 100 and messages <= 9  # the lone one, then one per 50 ms


@contextlib.asynccontextmanager
async def _three_processes(group: str):
    """Three processes' layers on the real Redis, each with its seat's channel in ``group``:
    (layers, channels, the sender's (the first's) calls of ``send_groups`` and
    ``group_members``, counted and passed on)."""
    require_redis()
    prefix = f"wmtest-{uuid.uuid4().hex[:8]}"
    layers = [RedisLayer(hosts=[REDIS_URL], prefix=prefix) for _ in range(3)]
    calls: list[str] = []

    def counting(name):
        real = getattr(layers[0], name)

        async def call(*args, **kwargs):
            calls.append(name)
            return await real(*args, **kwargs)

        return call

    try:
        channels = [await layer.new_channel("gw.hub.") for layer in layers]
        for channel in channels:
            await layers[0].group_add(group, channel)
        for name in ("send_groups", "group_members"):
            setattr(layers[0], name, counting(name))
        yield layers, channels, calls
    finally:
        for layer in layers:
            await layer.close_pools()
        delete_redis_prefix(prefix)


@pytest.mark.redis
async def test_a_batch_for_one_group_is_one_script_on_redis() -> None:
    """A worker's streaming run: its envelopes for one topic reach every other process's
    seat in order, each batch written by one script (no separate read of the group)."""
    async with _three_processes("topic") as ((sender, a, b), (own, chan_a, chan_b), calls):
        outbox = Outbox(sender)
        outbox.own_channel = own
        task = await _run(outbox)
        count = 500
        for n in range(count):
            outbox.put_group("topic", _envelope(n))
            await outbox.room()
        await outbox.drain()
        task.cancel()
        got = {}
        for layer, channel in ((a, chan_a), (b, chan_b)):
            got[channel] = []
            while len(got[channel]) < count:
                for message in await asyncio.wait_for(layer.receive_many(channel), 5):
                    got[channel].extend(unbatch(message))
        sender.brpop_timeout = 1
        assert await sender.receive_many(own) == []
    expected = [f'{{"n":{n}}}' for n in range(count)]
    assert [e["payload"] for e in got[chan_a]] == expected
    assert [e["payload"] for e in got[chan_b]] == expected
    assert calls and set(calls) == {"send_groups"}


@pytest.mark.redis
async def test_a_batch_with_a_direct_message_reads_the_groups_then_sends_on_redis() -> None:
    """A batch with a message for one channel (a node's direct message) among group events
    takes the two-step way (the groups' members, then one message per channel): each
    process still gets ONE message with its envelopes in the order they were sent."""
    async with _three_processes("room") as ((sender, a, b), (own, chan_a, chan_b), calls):
        outbox = Outbox(sender)
        outbox.own_channel = own
        outbox.put_group("room", _envelope(0))
        outbox.put_channel(chan_b, _envelope(1))
        outbox.put_group("room", _envelope(2))
        (on_a, messages_a), (on_b, messages_b) = await _deliveries(
            outbox, (a, chan_a, 2), (b, chan_b, 3)
        )
    assert [e["payload"] for e in on_a] == ['{"n":0}', '{"n":2}']
    assert [e["payload"] for e in on_b] == ['{"n":0}', '{"n":1}', '{"n":2}']
    assert (messages_a, messages_b, calls) == (1, 1, ["group_members"])
