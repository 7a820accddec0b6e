"""The Redis channel layer, with a receive that takes everything waiting in one round trip.

channels_redis receives one message per call, and each call costs its caller four Redis
round trips (a clean-up script, BZPOPMIN, a backup ZADD, then a ZPOPMIN of the backup) and
two tasks. That is right for many consumers each owning a channel; a gateway process has one
(its seat's) and receives every other process's events on it, so under a streaming run the
receive, not the send, set the pace (~4 ms per message on a loaded 2-core machine).

:meth:`receive_many` blocks with BZMPOP until a message waits and takes it with up to
``RECEIVE_MANY - 1`` more in the same round trip (before Redis 7: BZPOPMIN for the first,
then one ZPOPMIN). It skips the backup queue: that copy only helps a
receiver that was cancelled and calls again with the same channel name, and a seat's
channel name dies with its process. Everything else (send, group_send, groups, capacity,
expiry, the serializer) is channels_redis's own.
"""

from __future__ import annotations

import os
import time
from typing import Any

from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer
from channels_redis.serializers import MsgPackSerializer
from redis.exceptions import ResponseError

#: At most this many messages come back from one :meth:`receive_many`.
RECEIVE_MANY = 256

#: :meth:`RedisChannelLayer.group_add_many` joins this many groups per script call.
GROUP_ADD_CHUNK = 200


class RedisChannelLayer(_ChannelsRedisLayer):
    """channels_redis's layer plus :meth:`receive_many` for a process's own channel."""

    #: Redis 7's BZMPOP takes everything waiting in ONE round trip (blocking for the first);
    #: set False on the first "unknown command" (then BZPOPMIN + ZPOPMIN, two).
    bzmpop = True

    async def receive_many(self, channel: str) -> list[dict[str, Any]]:
        """The messages waiting on ``channel`` (a ``specific.<client>!`` channel of this
        layer), oldest first; at least one, or an empty list after ``brpop_timeout``."""
        assert self.require_valid_channel_name(channel)  # noqa: S101 - as channels_redis does
        real = self.non_local_name(channel)
        if real == channel or not real.endswith(self.client_prefix + "!"):
            return [await self.receive(channel)]
        connection = self.connection(self.consistent_hash(real))
        key = self.prefix + real
        if self.bzmpop:
            try:
                popped = await connection.execute_command(
                    "BZMPOP", self.brpop_timeout, 1, key, "MIN", "COUNT", RECEIVE_MANY
                )
            except ResponseError as exc:  # a Redis before 7.0
                if "unknown command" not in str(exc).lower():
                    raise
                self.bzmpop = False
                return await self.receive_many(channel)
            members = [member for member, _ in popped[1]] if popped else []
        else:
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

    def packs_batches(self) -> bool:
        """Can a script build this layer's messages (:meth:`send_groups`)? One Redis host,
        msgpack, no encryption, and channels_redis's random prefix to make each unique."""
        serializer = self._serializer
        return (
            self.ring_size == 1
            and isinstance(serializer, MsgPackSerializer)
            and not serializer.crypter
            and serializer.random_prefix_length >= 2
        )

    async def send_groups(
        self,
        items: list[tuple[str, dict[str, Any]]],
        *,
        batch_type: str,
        capacity_of: str,
        exclude: str = "",
    ) -> int:
        """Send each ``(group, envelope)`` to every current channel of its group but
        ``exclude``: ONE message per channel with all of its envelopes in order, in ONE round
        trip (a script reads the groups' members and writes each channel its message), where
        ``group_members`` + ``send_each`` cost two and a reply to parse per group. Only where
        :meth:`packs_batches`, for groups of process-specific channels (``x.<client>!<id>``,
        the seats'), all of ``capacity_of``'s capacity. The script builds each message as the
        serializer would have: the random prefix, then the msgpack of ``{"type":
        batch_type, "batch": [envelopes]}`` (each envelope packed once, here), without
        channels_redis's ``__asgi_channel__`` (``receive_many`` does not read it). It writes
        keys it computes from the groups' members: fine on one standalone Redis, not on a
        Redis Cluster (which channels_redis does not support either). Returns how many
        channels were full (their message dropped)."""
        serializer = self._serializer
        indexes: dict[str, int] = {}
        args: list[Any] = []
        for group, envelope in items:
            args += [indexes.setdefault(group, len(indexes) + 1), serializer.as_bytes(envelope)]
        head = serializer.as_bytes({"type": batch_type, "batch": None})[:-1]  # (no nil)
        return await self.connection(0).eval(
            _SEND_GROUPS,
            len(indexes),
            *[self._group_key(group) for group in indexes],
            head,
            os.urandom(serializer.random_prefix_length - 2),
            self.get_capacity(capacity_of),
            time.time(),
            int(self.expiry),
            int(time.time()) - self.group_expiry,
            self.prefix,
            exclude,
            *args,
        )

    async def group_add_many(self, groups: list[str], channel: str) -> None:
        """``group_add`` of ``channel`` to every group in ``groups``: one script per
        :data:`GROUP_ADD_CHUNK` groups on each Redis host. A gateway re-joins every group it
        holds, a room's and a node's each, every ``REFRESH_SECONDS``: with 1000 nodes a
        pipeline of 2000 commands held its event loop for 30-400 ms (packing the commands,
        parsing 2000 replies), every 10 s. A script's call packs the keys and answers one
        integer, and the loop runs other work between the chunks."""
        by_index: dict[int, list[str]] = {}
        for group in groups:
            self.require_valid_group_name(group)  # (raises for a bad name)
            by_index.setdefault(self.consistent_hash(group), []).append(group)
        self.require_valid_channel_name(channel)
        for index, names in by_index.items():
            for start in range(0, len(names), GROUP_ADD_CHUNK):
                keys = [self._group_key(group) for group in names[start : start + GROUP_ADD_CHUNK]]
                await self.connection(index).eval(
                    _GROUP_ADD_MANY, len(keys), *keys, channel, time.time(), self.group_expiry
                )

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


#: ``group_add`` (channels_redis's ZADD + EXPIRE) of ARGV[1] to each group of KEYS, at
#: the time ARGV[2], the groups to expire after ARGV[3] seconds.
_GROUP_ADD_MANY = """
for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
    redis.call('EXPIRE', KEYS[i], ARGV[3])
end
return #KEYS
"""


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


#: Each envelope (ARGV[9], ARGV[11], ...: packed) goes to the current members of its group
#: (ARGV[8], ARGV[10], ...: an index into KEYS, the groups' keys), one message per channel
#: key (channel keys as channels_redis names them: the prefix and the channel up to its
#: ``!``) with its envelopes in order, written as ``_SEND_EACH`` does. A message is the
#: prefix (ARGV[2] and the channel's number: unique), the head (ARGV[1]: the packed map up to
#: the batch), then the batch: a msgpack array header and the envelopes. ARGV also has the
#: capacity, the time, the expiry, the oldest member score, the key prefix and the channel
#: to leave out (ARGV[3..7]).
_SEND_GROUPS = """
local now = tonumber(ARGV[4])
local expiry = tonumber(ARGV[5])
local members = {}
for g = 1, #KEYS do
    local keys, seen = {}, {}
    for _, channel in ipairs(redis.call('ZRANGEBYSCORE', KEYS[g], ARGV[6], '+inf')) do
        local bang = string.find(channel, '!', 1, true)
        local key = ARGV[7] .. (bang and string.sub(channel, 1, bang) or channel)
        if channel ~= ARGV[8] and not seen[key] then
            seen[key] = true
            keys[#keys + 1] = key
        end
    end
    members[g] = keys
end
local order, batches = {}, {}
for i = 9, #ARGV, 2 do
    for _, key in ipairs(members[tonumber(ARGV[i])]) do
        local batch = batches[key]
        if batch == nil then
            batch = {}
            batches[key] = batch
            order[#order + 1] = key
        end
        batch[#batch + 1] = ARGV[i + 1]
    end
end
local full = 0
for j, key in ipairs(order) do
    local batch = batches[key]
    local n = #batch
    local header
    if n < 16 then
        header = string.char(0x90 + n)
    else
        header = string.char(0xdc, math.floor(n / 256), n % 256)
    end
    local prefix = ARGV[2] .. string.char(math.floor(j / 256) % 256, j % 256)
    redis.call('ZREMRANGEBYSCORE', key, 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', key, '-inf', '+inf') < tonumber(ARGV[3]) then
        redis.call('ZADD', key, now, prefix .. ARGV[1] .. header .. table.concat(batch))
        redis.call('EXPIRE', key, expiry)
    else
        full = full + 1
    end
end
return full
"""
