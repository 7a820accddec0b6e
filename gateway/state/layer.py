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
