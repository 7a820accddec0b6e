"""The one place that publishes events (style.md: only services call this module, and this
module is the only caller of ``group_send``).

An event is serialised once (:class:`EncodedEvent`); each connection only splices its own
``seq`` into a per-dialect template. Delivery crosses the channel layer once per gateway
*process* (to that process's hub channel), and the hub fans out to its local sockets
(design/performance.md).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

from gateway.protocol.base import Frame
from gateway.protocol.dialects.base import dumps
from gateway.protocol.handshake import dump

if TYPE_CHECKING:
    from gateway.protocol.dialects.base import Dialect

#: The fixed channel-layer message type; client JSON never chooses it.
ENVELOPE_TYPE = "gateway.event"
#: Every hub is a member of this group.
ALL_GROUP = "gw.all"


def now_ms() -> int:
    return int(time.time() * 1000)


class EncodedEvent:
    """An event serialised once, rendered per connection by splicing in its ``seq``."""

    __slots__ = ("_templates", "name", "payload_json", "state_version_json", "targeted", "ts")

    def __init__(
        self,
        name: str,
        payload_json: str,
        state_version_json: str | None = None,
        *,
        ts: int | None = None,
        targeted: bool = False,
    ) -> None:
        self.name = name
        self.payload_json = payload_json
        self.state_version_json = state_version_json
        self.ts = now_ms() if ts is None else ts
        #: Sent to named connections: delivered whatever they subscribed to.
        self.targeted = targeted
        self._templates: dict[str, tuple[str, str]] = {}

    @classmethod
    def build(
        cls,
        name: str,
        payload: Any,
        state_version: dict[str, int] | None = None,
        *,
        targeted: bool = False,
    ) -> EncodedEvent:
        data = dump(payload) if isinstance(payload, Frame) else payload
        sv = dumps(state_version) if state_version is not None else None
        return cls(name, dumps(data), sv, targeted=targeted)

    def render(self, dialect: Dialect, seq: int) -> str:
        """The frame text for one connection."""
        template = self._templates.get(dialect.name)
        if template is None:
            template = dialect.event_template(
                self.name, self.payload_json, self.state_version_json, self.ts
            )
            self._templates[dialect.name] = template
        return f"{template[0]}{seq}{template[1]}"

    def envelope(self, **route: Any) -> dict[str, Any]:
        """The channel-layer message carrying this event."""
        return {
            "type": ENVELOPE_TYPE,
            "event": self.name,
            "payload": self.payload_json,
            "sv": self.state_version_json,
            "ts": self.ts,
            **route,
        }

    @classmethod
    def from_envelope(cls, message: dict[str, Any]) -> EncodedEvent:
        return cls(
            message["event"],
            message["payload"],
            message.get("sv"),
            ts=message.get("ts"),
            targeted=message.get("to") is not None,
        )


def topic_group(topic: str) -> str:
    """Channel-layer group name for a topic (valid characters only, bounded length)."""
    import hashlib

    return "gw.t." + hashlib.blake2b(topic.encode(), digest_size=12).hexdigest()


async def publish(name: str, payload: Any, *, state_version: dict[str, int] | None = None) -> None:
    """Send an event to every connection of every gateway process (subject to filters)."""
    event = EncodedEvent.build(name, payload, state_version)
    await get_channel_layer().group_send(ALL_GROUP, event.envelope())


async def publish_topic(
    topic: str, name: str, payload: Any, *, state_version: dict[str, int] | None = None
) -> None:
    """Send an event to the connections subscribed to ``topic``, on every process."""
    event = EncodedEvent.build(name, payload, state_version)
    await get_channel_layer().group_send(topic_group(topic), event.envelope(topic=topic))


async def publish_to(conn_ids: list[str], name: str, payload: Any) -> None:
    """Send an event to named connections wherever they are connected."""
    from gateway.hub import get_hub

    event = EncodedEvent.build(name, payload, targeted=True)
    await (await get_hub()).route_to_connections(conn_ids, event)


async def publish_local(name: str, payload: Any) -> int:
    """Send an event to this process's own connections only (tick, presence.tick, shutdown).

    Returns the number of frames sent.
    """
    from gateway.hub import get_hub

    return await (await get_hub()).fan_out(EncodedEvent.build(name, payload))
