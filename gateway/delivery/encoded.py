"""An event serialised once (:class:`EncodedEvent`) and its channel-layer envelope.

Each connection only splices its own ``seq`` into a per-dialect template; between processes
an event travels as one envelope of the fixed type ``gateway.event`` (client JSON never
chooses a channel-layer type).
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

from gateway.protocol.base import Frame
from gateway.protocol.dialects.base import dumps, now_ms
from gateway.protocol.handshake import dump

if TYPE_CHECKING:
    from gateway.protocol.dialects.base import Dialect

#: The fixed channel-layer message type; client JSON never chooses it.
ENVELOPE_TYPE = "gateway.event"
#: Every process's seat is a member of this group.
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

    def render(self, dialect: Dialect, seq: int, request: Any = None) -> str | None:
        """The frame text for one connection (``request``: the request of that connection the
        event answers, for dialects that echo request ids); None: the dialect has no frame
        for this event."""
        template = self._templates.get(dialect.name)
        if template is None:
            template = dialect.event_template(
                self.name, self.payload_json, self.state_version_json, self.ts
            )
            self._templates[dialect.name] = template
        return dialect.splice(template, seq, self, request)

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


@functools.lru_cache(maxsize=4096)
def topic_group(topic: str) -> str:
    """Channel-layer group name for a topic (valid characters only, bounded length);
    remembered, as a streaming run names its session's topic for every chunk."""
    return "gw.t." + hashlib.blake2b(topic.encode(), digest_size=12).hexdigest()
