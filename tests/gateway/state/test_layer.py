"""The Redis channel layer's receive_many, on the real Redis: everything waiting on a
process's channel in one call, in order, with channels_redis's own send and group_send."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ResponseError

from gateway.state.layer import GROUP_ADD_CHUNK, RECEIVE_MANY, RedisChannelLayer
from tests.conftest import REDIS_URL, delete_redis_prefix, require_redis

pytestmark = pytest.mark.redis


@pytest.fixture
async def layers():
    require_redis()
    prefix = f"wmtest-{uuid.uuid4().hex[:8]}"
    made = [RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix, capacity=1000) for _ in range(2)]
    try:
        yield made
    finally:
        for layer in made:
            await layer.close_pools()
        delete_redis_prefix(prefix)


async def test_everything_waiting_comes_back_in_one_call_in_order(layers) -> None:
    sender, receiver = layers
    channel = await receiver.new_channel()
    await receiver.group_add("topic", channel)
    for n in range(RECEIVE_MANY + 10):
        await (
            sender.group_send("topic", {"type": "t", "n": n})
            if n % 2
            else sender.send(channel, {"type": "t", "n": n})
        )
    first = await receiver.receive_many(channel)
    second = await receiver.receive_many(channel)
    assert [m["n"] for m in first] == list(range(RECEIVE_MANY))
    assert [m["n"] for m in second] == list(range(RECEIVE_MANY, RECEIVE_MANY + 10))
    assert all("__asgi_channel__" not in m for m in first + second)


async def test_it_blocks_until_a_message_arrives(layers) -> None:
    sender, receiver = layers
    channel = await receiver.new_channel()
    waiting = asyncio.create_task(receiver.receive_many(channel))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await sender.send(channel, {"type": "t", "n": 1})
    assert await asyncio.wait_for(waiting, 5) == [{"type": "t", "n": 1}]


async def test_it_answers_empty_after_the_blocking_timeout(layers) -> None:
    _, receiver = layers
    receiver.brpop_timeout = 1
    channel = await receiver.new_channel()
    assert await asyncio.wait_for(receiver.receive_many(channel), 5) == []


class _Counted:
    """Counts the commands a layer's Redis client sends (each is one round trip), passing
    every call on to the real client; ``refuse`` names commands answered like an old Redis."""

    def __init__(self, layer: RedisChannelLayer, refuse: str = "") -> None:
        self.client = layer.connection(0)
        self.real = self.client.execute_command
        self.refuse = refuse
        self.commands: list[str] = []
        self.client.execute_command = self

    async def __call__(self, *args, **options):
        name = str(args[0]).upper()
        self.commands.append(name)
        if name == self.refuse:
            raise ResponseError(f"ERR unknown command '{name}', with args beginning with:")
        return await self.real(*args, **options)


async def test_a_group_send_reaches_each_process_once_in_one_round_trip(layers) -> None:
    """send_groups: one script reads the groups and writes each member's process (two
    channels of one process: once) one message with the envelopes of its groups in order,
    leaving out the sender's own channel; what arrives is what msgpack would have made."""
    sender, receiver = layers
    other = RedisChannelLayer(hosts=[REDIS_URL], prefix=sender.prefix, capacity=1000)
    try:
        own = await sender.new_channel("gw.hub.")
        mine, mine_too = await receiver.new_channel("gw.hub."), await receiver.new_channel()
        theirs = await other.new_channel("gw.hub.")
        for channel in (own, mine, mine_too, theirs):
            await sender.group_add("topic", channel)
        await sender.group_add("only-theirs", theirs)
        await sender.group_add("nobody", own)
        counted = _Counted(sender)
        assert sender.packs_batches()
        items = [("topic", {"n": 0}), ("only-theirs", {"n": 1}), ("nobody", {"n": 2})]
        items += [("topic", {"n": n, "text": "é" * n}) for n in range(3, 40)]
        full = await sender.send_groups(items, batch_type="t", capacity_of=own, exclude=own)
        assert (full, counted.commands) == (0, ["EVAL"])
        topic = [envelope for group, envelope in items if group == "topic"]
        assert await receiver.receive_many(mine) == [{"type": "t", "batch": topic}]
        everything = [envelope for group, envelope in items if group != "nobody"]
        assert await other.receive_many(theirs) == [{"type": "t", "batch": everything}]
        receiver.brpop_timeout = other.brpop_timeout = sender.brpop_timeout = 1
        assert await receiver.receive_many(mine) == []  # once per process
        assert await sender.receive_many(own) == []  # never to the sender
    finally:
        await other.close_pools()


async def test_a_group_send_drops_for_a_full_channel_and_says_so(layers) -> None:
    sender, receiver = layers
    small = RedisChannelLayer(hosts=[REDIS_URL], prefix=sender.prefix, capacity=2)
    try:
        channel = await receiver.new_channel("gw.hub.")
        await small.group_add("topic", channel)
        sent = [
            await small.send_groups([("topic", {"n": n})], batch_type="t", capacity_of=channel)
            for n in range(3)
        ]
        assert sent == [0, 0, 1]
        got = await receiver.receive_many(channel)
        assert [m["batch"] for m in got] == [[{"n": 0}], [{"n": 1}]]
    finally:
        await small.close_pools()


async def test_a_layer_that_encrypts_does_not_pack_batches_in_a_script() -> None:
    encrypted = RedisChannelLayer(hosts=[REDIS_URL], symmetric_encryption_keys=["k" * 32])
    assert not encrypted.packs_batches()


async def test_receive_many_takes_what_waits_in_one_round_trip(layers) -> None:
    sender, receiver = layers
    channel = await receiver.new_channel("gw.hub.")
    for n in range(5):
        await sender.send(channel, {"type": "t", "n": n})
    counted = _Counted(receiver)
    assert [m["n"] for m in await receiver.receive_many(channel)] == list(range(5))
    assert counted.commands == ["BZMPOP"]


async def test_receive_many_on_a_redis_without_bzmpop_takes_two_round_trips(layers) -> None:
    sender, receiver = layers
    channel = await receiver.new_channel("gw.hub.")
    for n in range(5):
        await sender.send(channel, {"type": "t", "n": n})
    counted = _Counted(receiver, refuse="BZMPOP")
    assert [m["n"] for m in await receiver.receive_many(channel)] == list(range(5))
    assert counted.commands == ["BZMPOP", "BZPOPMIN", "ZPOPMIN"]
    assert receiver.bzmpop is False
    await sender.send(channel, {"type": "t", "n": 5})
    assert [m["n"] for m in await receiver.receive_many(channel)] == [5]
    assert counted.commands[3:] == ["BZPOPMIN", "ZPOPMIN"]


async def test_joining_many_groups_is_one_script_per_chunk(layers) -> None:
    """group_add_many: every group gets the channel (as group_add gives it: scored now,
    the group's key expiring after group_expiry), a script per GROUP_ADD_CHUNK groups (a
    refresh of 1000 nodes' groups held the event loop as a pipeline of 2000 commands);
    the groups' other members stay."""
    layer, _ = layers
    channel = await layer.new_channel("gw.hub.")
    other = await layer.new_channel("gw.hub.")
    groups = [f"topic-{n}" for n in range(2 * GROUP_ADD_CHUNK + 50)]
    await layer.group_add("topic-3", other)
    counted = _Counted(layer)
    await layer.group_add_many(groups, channel)
    assert counted.commands == ["EVAL"] * 3
    members = await layer.group_members(groups)
    assert members == {group: [channel] for group in groups if group != "topic-3"} | {
        "topic-3": [other, channel]  # (oldest first)
    }
    ttl = await layer.connection(0).ttl(layer._group_key(groups[-1]))
    assert 0 < ttl <= layer.group_expiry
    with pytest.raises(TypeError):
        await layer.group_add_many(["bad group name!"], channel)
