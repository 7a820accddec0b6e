"""The one place that publishes events (style.md: only services call this module, and this
module is the only caller of ``group_send``).

An event is serialised once (:class:`EncodedEvent`); each connection only splices its own
``seq`` into a per-dialect template. Delivery crosses the channel layer once per gateway
*process* (to that process's hub channel), and the hub fans out to its local sockets
(design/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from gateway.protocol.base import Frame
from gateway.protocol.dialects.base import dumps, now_ms
from gateway.protocol.handshake import dump

if TYPE_CHECKING:
    from gateway.protocol.dialects.base import Dialect

logger = logging.getLogger(__name__)

#: The fixed channel-layer message type; client JSON never chooses it.
ENVELOPE_TYPE = "gateway.event"
#: Every hub is a member of this group.
ALL_GROUP = "gw.all"


class EncodedEvent:
    """An event serialised once, rendered per connection by splicing in its ``seq``."""

    __slots__ = (
        "_templates",
        "key",
        "name",
        "payload_json",
        "state_version_json",
        "targeted",
        "ts",
    )

    def __init__(
        self,
        name: str,
        payload_json: str,
        state_version_json: str | None = None,
        *,
        ts: int | None = None,
        targeted: bool = False,
        key: str | None = None,
    ) -> None:
        self.name = name
        self.payload_json = payload_json
        self.state_version_json = state_version_json
        self.ts = now_ms() if ts is None else ts
        #: Sent to named connections: delivered whatever they subscribed to.
        self.targeted = targeted
        #: What the event is about (a run id for ``agent`` events): dialects may use it.
        self.key = key
        self._templates: dict[str, tuple[str, ...]] = {}

    @classmethod
    def build(
        cls,
        name: str,
        payload: Any,
        state_version: dict[str, int] | None = None,
        *,
        targeted: bool = False,
        key: str | None = None,
    ) -> EncodedEvent:
        data = dump(payload) if isinstance(payload, Frame) else payload
        sv = dumps(state_version) if state_version is not None else None
        return cls(name, dumps(data), sv, targeted=targeted, key=key)

    def render(self, dialect: Dialect, seq: int, conn: Any = None) -> str:
        """The frame text for one connection."""
        template = self._templates.get(dialect.name)
        if template is None:
            template = dialect.event_template(
                self.name, self.payload_json, self.state_version_json, self.ts
            )
            self._templates[dialect.name] = template
        return dialect.splice(template, seq, self, conn)

    def envelope(self, **route: Any) -> dict[str, Any]:
        """The channel-layer message carrying this event."""
        return {
            "type": ENVELOPE_TYPE,
            "event": self.name,
            "payload": self.payload_json,
            "sv": self.state_version_json,
            "ts": self.ts,
            "key": self.key,
            **route,
        }

    @classmethod
    def from_envelope(cls, message: dict[str, Any]) -> EncodedEvent:
        return cls(
            message["event"],
            message["payload"],
            message.get("sv"),
            ts=message.get("ts"),
            targeted="to" in message or "topic" in message,
            key=message.get("key"),
        )


def topic_group(topic: str) -> str:
    """Channel-layer group name for a topic (valid characters only, bounded length)."""
    import hashlib

    return "gw.t." + hashlib.blake2b(topic.encode(), digest_size=12).hexdigest()


async def publish(name: str, payload: Any, *, state_version: dict[str, int] | None = None) -> None:
    """Send an event to every connection of every gateway process (subject to filters)."""
    from gateway.hub import get_hub

    event = EncodedEvent.build(name, payload, state_version)
    await (await get_hub()).deliver(event)


async def publish_topic(
    topic: str, name: str, payload: Any, *, exclude: str | None = None, key: str | None = None
) -> None:
    """Send an event to the connections subscribed to ``topic`` on every process
    (``exclude``: a connection that should not get it, e.g. the one it came from;
    ``key``: what the event is about, e.g. the run id, for dialects that echo it)."""
    from gateway.hub import get_hub

    event = EncodedEvent.build(name, payload, targeted=True, key=key)
    route: dict[str, Any] = {"topic": topic}
    if exclude:
        route["exclude"] = exclude
    await (await get_hub()).deliver(event, route)


async def publish_to(conn_ids: list[str], name: str, payload: Any) -> None:
    """Send an event to named connections wherever they are connected."""
    from gateway.hub import get_hub

    event = EncodedEvent.build(name, payload, targeted=True)
    await (await get_hub()).deliver(event, {"to": conn_ids})


async def publish_local(name: str, payload: Any) -> int:
    """Send an event to this process's own connections only (tick, presence.tick, shutdown).

    Returns the number of frames sent.
    """
    from gateway.hub import get_hub

    return await (await get_hub()).fan_out(EncodedEvent.build(name, payload))


class Outbox:
    """Ordered delivery of envelopes to the other gateway processes.

    The hub delivers to its own sockets first, then queues the envelope here; one task
    sends them in order, so a slow channel layer never delays local clients.
    """

    def __init__(self, layer) -> None:
        self.layer = layer
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()

    def put_group(self, group: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("group", group, envelope))

    def put_channel(self, channel: str, envelope: dict[str, Any]) -> None:
        self.queue.put_nowait(("channel", channel, envelope))

    async def run(self) -> None:
        while True:
            kind, target, envelope = await self.queue.get()
            try:
                if kind == "group":
                    await self.layer.group_send(target, envelope)
                else:
                    await self.layer.send(target, envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(target, exc)
            finally:
                self.queue.task_done()

    @staticmethod
    def _failed(target: str, exc: Exception) -> None:
        from gateway import outage

        if outage.is_outage(exc):  # logged once per outage, not once per event
            outage.redis_state.failed(exc, "sending events to the other processes")
        else:
            logger.exception(
                "channel layer send to %s failed; event lost for other processes", target
            )

    async def drain(self) -> None:
        """Wait (at most two seconds) until everything queued was handed to the layer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 2.0)
