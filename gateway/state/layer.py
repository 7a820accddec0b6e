"""The Redis channel layer, with a receive that takes everything waiting in two round trips.

channels_redis receives one message per call, and each call costs its caller four Redis
round trips (a clean-up script, BZPOPMIN, a backup ZADD, then a ZPOPMIN of the backup) and
two tasks. That is right for many consumers each owning a channel; a gateway process has one
(its seat's) and receives every other process's events on it, so under a streaming run the
receive, not the send, set the pace (~4 ms per message on a loaded 2-core machine).

:meth:`receive_many` blocks on BZPOPMIN for the first message and takes up to
``RECEIVE_MANY`` more with one ZPOPMIN. It skips the backup queue: that copy only helps a
receiver that was cancelled and calls again with the same channel name, and a seat's
channel name dies with its process. Everything else (send, group_send, groups, capacity,
expiry, the serializer) is channels_redis's own.
"""

from __future__ import annotations

import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer

#: At most this many messages come back from one :meth:`receive_many`.
RECEIVE_MANY = 256


class RedisChannelLayer(_ChannelsRedisLayer):
    """channels_redis's layer plus :meth:`receive_many` for a process's own channel."""

    async def receive_many(self, channel: str) -> list[dict[str, Any]]:
        """The messages waiting on ``channel`` (a ``specific.<client>!`` channel of this
        layer), oldest first; at least one, or an empty list after ``brpop_timeout``."""
        assert self.require_valid_channel_name(channel)  # noqa: S101 - as channels_redis does
        real = self.non_local_name(channel)
        if real == channel or not real.endswith(self.client_prefix + "!"):
            return [await self.receive(channel)]
        connection = self.connection(self.consistent_hash(real))
        key = self.prefix + real
        first = await connection.bzpopmin(key, timeout=self.brpop_timeout)
        if first is None:
            return []
        members = [first[1]]
        members += [member for member, _ in await connection.zpopmin(key, RECEIVE_MANY - 1)]
        messages = []
        for member in members:
            message = self.deserialize(member)
            message.pop("__asgi_channel__", None)
            messages.append(message)
        return messages

    async def send_each(self, messages: dict[str, dict[str, Any]]) -> int:
        """Send each channel its message: one script per Redis host, where ``send`` costs
        four round trips per channel. Returns how many channels were full (their message
        dropped, as ``group_send`` does)."""
        by_index: dict[int, list[tuple[bytes, bytes, int]]] = {}
        for channel, message in messages.items():
            real = channel
            if "!" in channel:
                message = {**message, "__asgi_channel__": [channel]}
                real = self.non_local_name(channel)
            key = (self.prefix + real).encode()
            entry = (key, self.serialize(message), self.get_capacity(channel))
            by_index.setdefault(self.consistent_hash(real), []).append(entry)
        full = 0
        for index, entries in by_index.items():
            keys = [k for k, _, _ in entries]
            args = [m for _, m, _ in entries] + [c for _, _, c in entries]
            args += [time.time(), int(self.expiry)]
            full += await self.connection(index).eval(_SEND_EACH, len(keys), *keys, *args)
        return full

    async def group_members(self, groups: list[str]) -> dict[str, list[str]]:
        """Each group's current (unexpired) channels: one pipeline per Redis host."""
        by_index: dict[int, list[str]] = {}
        for group in groups:
            by_index.setdefault(self.consistent_hash(group), []).append(group)
        oldest = int(time.time()) - self.group_expiry
        out: dict[str, list[str]] = {}
        for index, names in by_index.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in names:
                pipe.zrangebyscore(self._group_key(group), oldest, "+inf")
            for group, found in zip(names, await pipe.execute(), strict=True):
                out[group] = [c.decode() for c in found]
        return out


#: channels_redis's group_send script, plus its ``send``'s removal of expired messages:
#: KEYS the channels' keys, ARGV their messages, their capacities, the time, the expiry.
_SEND_EACH = """
local full = 0
local now = tonumber(ARGV[#ARGV - 1])
local expiry = tonumber(ARGV[#ARGV])
for i = 1, #KEYS do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        full = full + 1
    end
end
return full
"""
