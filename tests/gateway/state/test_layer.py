"""The Redis channel layer's receive_many, on the real Redis: everything waiting on a
process's channel in one call, in order, with channels_redis's own send and group_send."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.state.layer import RECEIVE_MANY, RedisChannelLayer
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
