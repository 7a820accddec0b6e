"""``wingman gateway bench --mode rooms``: N wingman-node connections in rooms of K, every
member broadcasting at a steady rate; the offered delivery rate steps up until a step is
not sustained (p99 >= 50 ms, or under 95% of the deliveries arrive), then ``--refine`` steps
halve the gap between the highest rate sustained and the lowest not; the same search against
the pure-websockets node server (``rooms_baseline.py``) in the same run, interleaved: a step
on the gateway, then one on the baseline (or the other way round: the order alternates),
both sets of connections open throughout. A warm-up step at half the first rate comes
first and is not reported.

A delivery is one member receiving another's broadcast. At an offered rate R deliveries/s,
the bench sends R/(K-1) broadcasts/s spread evenly over the N members (each sends one every
N(K-1)/R seconds), every broadcast stamped with its send time; a receiver's latency is its
arrival minus that stamp. ``--url`` may list several gateways (comma-separated: e.g. two
processes on Redis): member ``i`` joins room ``i % rooms`` through gateway ``(i // rooms) %
gateways``, so every room has members on each (at least as many members per room as
gateways), and a broadcast crosses processes.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.bench.client import BenchError, Endpoint
from gateway.bench.rawsocket import RawSocket

TICK_SECONDS = 0.01
P99_TARGET_MS = 50.0
DELIVERED_TARGET = 0.95


class Member(RawSocket):
    """One node: frames are handled as they are read (latencies recorded, pings answered)."""

    def __init__(self) -> None:
        super().__init__()
        self.node_id = ""
        self.group_id = ""
        self.live = False  # measuring: handle frames inline instead of queueing them
        self.step: Step | None = None
        self.errors = 0

    def data_received(self, data: bytes) -> None:
        if not self.live:
            super().data_received(data)
            return
        arrived = time.time_ns()
        self.reads += 1
        self.buffer += data
        for opcode, payload in self._frames():
            if opcode == 0x9:
                self._pong(payload)
            elif opcode == 0x8:
                self._fail(BenchError(f"closed by the server: {payload[:2].hex()}"))
            elif opcode == 0x1:
                self._handle(arrived, payload)

    def _handle(self, arrived: int, payload: bytes) -> None:
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "broadcast":
            message = frame.get("payload")
            step = self.step
            if step is not None and isinstance(message, dict) and message.get("s") == step.index:
                step.latencies.append((arrived - message["t"]) / 1e6)
        elif kind == "ping":
            self.send({"type": "pong", "nodeId": self.node_id})
        elif kind == "error":
            self.errors += 1
            if self.step is not None:
                self.step.errors[frame["payload"].get("code", "?")] += 1

    async def expect(self, kind: str) -> dict[str, Any]:
        """The next frame of this type (an error frame fails; at most 30 s)."""
        async with asyncio.timeout(30):
            while True:
                while self.frames:
                    frame = orjson.loads(self.frames.popleft()[1])
                    if frame.get("type") == kind:
                        return frame
                    if frame.get("type") == "error":
                        raise BenchError(f"{kind}: {frame.get('payload')}")
                await self._wait()


@dataclass
class Step:
    """One offered rate, and what arrived."""

    index: int
    offered: float  # deliveries/s
    sent: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def result(self, fanout: int) -> dict[str, Any]:
        lat = sorted(self.latencies)
        expected = self.sent * fanout
        delivered = len(lat)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        rate = delivered / self.seconds if self.seconds else 0.0
        ok = bool(lat) and delivered >= DELIVERED_TARGET * expected and pct(0.99) < P99_TARGET_MS
        return {
            "offered": round(self.offered),
            "delivered_per_s": round(rate),
            "delivered": delivered,
            "expected": expected,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1], 2) if lat else None,
            "errors": dict(self.errors),
            "sustained": ok,
        }


@dataclass(frozen=True)
class RoomsOptions:
    endpoints: tuple[Endpoint, ...]
    connections: int = 1000
    room_size: int = 10
    start_rate: float = 1000.0
    factor: float = 1.5
    #: Steps halfway between the highest rate sustained and the lowest not (``RateSearch``).
    refine: int = 2
    max_rate: float = 100_000.0
    step_seconds: float = 5.0
    concurrency: int = 100
    tag: str = ""
    #: Remove the rooms at the end (a gateway keeps them; the baseline keeps nothing).
    cleanup: bool = True


async def _open_member(endpoint: Endpoint, index: int, options: RoomsOptions) -> Member:
    loop = asyncio.get_running_loop()
    member: Member
    _, member = await asyncio.wait_for(
        loop.create_connection(Member, endpoint.host, endpoint.port), 10
    )
    await _upgrade(member, endpoint)
    await member.expect("event")  # connect.challenge
    payload: dict[str, Any] = {"name": f"bench-{index}"}
    if endpoint.token:
        payload["token"] = endpoint.token
    member.send({"type": "register", "payload": payload})
    member.node_id = (await member.expect("ack"))["nodeId"]
    group = f"bench-{options.tag}-{index % _rooms(options)}"
    join = {"groupName": group, "createIfNotExists": True}
    member.send({"type": "join_group", "nodeId": member.node_id, "payload": join})
    member.group_id = (await member.expect("ack"))["groupId"]
    return member


async def _upgrade(member: Member, endpoint: Endpoint) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    path = urlsplit(endpoint.url).path or "/"
    member.write(
        f"GET {path} HTTP/1.1\r\nHost: {endpoint.host}:{endpoint.port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    while member.head is None:
        await asyncio.wait_for(member._wait(), 10)
    if b" 101 " not in member.head.split(b"\r\n", 1)[0]:
        raise BenchError(f"WebSocket upgrade refused: {member.head[:80]!r}")


async def open_members(options: RoomsOptions) -> list[Member]:
    """N registered members, every room joined (connections dealt to the endpoints in turn)."""
    gate = asyncio.Semaphore(options.concurrency)

    async def one(index: int, endpoint: Endpoint) -> Member:
        async with gate:
            return await _open_member(endpoint, index, options)

    rooms, endpoints = _rooms(options), options.endpoints
    tasks = [
        asyncio.ensure_future(one(i, endpoints[gateway_of(i, rooms, len(endpoints))]))
        for i in range(options.connections)
    ]
    try:
        members = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
        raise
    for member in members:
        member.live = True
        member.frames.clear()
    return list(members)


async def run_step(members: list[Member], step: Step, options: RoomsOptions) -> None:
    """Send broadcasts at the step's rate for ``step_seconds``, then wait for stragglers."""
    fanout = options.room_size - 1
    per_second = step.offered / fanout
    for member in members:
        member.step = step
    order = itertools.cycle(members)
    loop = asyncio.get_running_loop()
    start = loop.time()
    owed = 0.0
    last = start
    while (now := loop.time()) - start < options.step_seconds:
        owed += (now - last) * per_second
        last = now
        while owed >= 1:
            owed -= 1
            member = next(order)
            message = {"t": time.time_ns(), "s": step.index}
            payload = {"groupId": member.group_id, "message": message}
            member.send({"type": "broadcast", "nodeId": member.node_id, "payload": payload})
            step.sent += 1
        await asyncio.sleep(TICK_SECONDS)
    step.seconds = loop.time() - start
    await asyncio.sleep(min(2.0, max(0.5, options.step_seconds / 5)))  # in-flight arrivals
    for member in members:
        member.step = None
    for member in members:
        if member.failure is not None:
            raise member.failure


@dataclass
class RateSearch:
    """One side's search for its highest sustained rate: up by ``factor`` from ``rate`` until
    a step is not sustained, then ``refine`` steps halfway (geometrically) between the
    highest rate sustained and the lowest not, so the answer is within a factor of
    ``factor ** (1 / 2 ** refine)`` of the true one rather than ``factor`` (with 1.25x steps a
    ratio of two sides moved in jumps of 1.25: 0.41, 0.51, 0.64)."""

    rate: float
    factor: float
    max_rate: float
    refine: int = 0
    low: float | None = None  # highest sustained
    high: float | None = None  # lowest not sustained

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the search is over."""
        if self.high is None:
            return self.rate if self.rate <= self.max_rate else None
        if self.low is None or self.refine <= 0:
            return None
        return (self.low * self.high) ** 0.5

    def record(self, rate: float, sustained: bool) -> None:
        """What the step at ``rate`` showed."""
        if self.high is not None:
            self.refine -= 1
        if not sustained:
            self.high = rate
        else:
            self.low = rate
            if self.high is None:
                self.rate = rate * self.factor


async def measure(sides: dict[str, RoomsOptions], log) -> dict[str, dict[str, Any]]:
    """Open every side's members (e.g. the gateway's and the baseline's), then step the rate
    up on all sides in turn, each side's next rate (``RateSearch``) one side after the other
    (which side goes first alternates), until every side's search is over: the sides are
    measured at the same moments, so the load other work puts on the machine weighs on
    both alike. Each side's steps and its highest sustained delivery rate."""
    members: dict[str, list[Member]] = {}
    try:
        for name, options in sides.items():
            members[name] = await open_members(options)
            log(f"{name}: {len(members[name])} members in {_rooms(options)} rooms")
        results = {name: {"steps": [], "best": None} for name in sides}
        order = list(sides)
        for name in order:  # a warm-up step each, not reported: the first broadcasts load rooms
            warm = Step(index=0, offered=sides[name].start_rate / 2)
            await run_step(members[name], warm, sides[name])
        searches = {
            name: RateSearch(o.start_rate, o.factor, o.max_rate, o.refine)
            for name, o in sides.items()
        }
        index = 1
        while any(s.next_rate() is not None for s in searches.values()):
            for name in order:
                rate = searches[name].next_rate()
                if rate is None:
                    continue
                step = Step(index=index, offered=rate)
                await run_step(members[name], step, sides[name])
                result = step.result(sides[name].room_size - 1)
                results[name]["steps"].append(result)
                searches[name].record(rate, result["sustained"])
                log(
                    f"{name}: offered {result['offered']}/s: delivered "
                    f"{result['delivered_per_s']}/s, p50 {result['p50_ms']} ms, "
                    f"p99 {result['p99_ms']} ms, errors {result['errors']}"
                )
                if result["sustained"]:
                    results[name]["best"] = result
            order.reverse()
            index += 1
    finally:
        for side in members.values():
            for member in side:
                member.close()
        for name, side in members.items():
            if sides[name].cleanup:
                await _delete_rooms(sides[name].endpoints[0], {m.group_id for m in side}, log)
    return results


def gateway_of(index: int, rooms: int, gateways: int) -> int:
    """The gateway member ``index`` connects to: the members of room ``index % rooms`` are
    dealt to the gateways in turn. (Dealing the members themselves in turn put every room
    on one gateway whenever the number of rooms is a multiple of the gateways'.)"""
    return (index // rooms) % gateways


def _rooms(options: RoomsOptions) -> int:
    return options.connections // options.room_size


async def _delete_rooms(endpoint: Endpoint, room_ids: set[str], log) -> None:
    """Remove the run's rooms (with their history): repeated runs on one state would
    otherwise fill ``WINGMAN_ROOMS_MAX``."""
    # imported here: every ``wingman`` command imports the bench's options, and a gateway
    # would otherwise carry invoke's imports (cryptography, ~8 MB of RSS)
    from gateway.bench.invoke import _connect_params, _open

    client = {"id": "bench", "version": "bench", "mode": "cli"}
    try:
        operator = await _open(
            endpoint, lambda _: _connect_params(endpoint, client=client, role="operator")
        )
    except (OSError, BenchError) as exc:
        log(f"could not remove the bench rooms: {exc}")
        return
    try:
        for room_id in room_ids:
            await operator.call("rooms.delete", {"roomId": room_id})
    except BenchError as exc:
        log(f"could not remove every bench room: {exc}")
    finally:
        operator.reader.cancel()
        await operator.ws.close()
