"""Server-Sent Events: the frame format and a renderer so DRF accepts
``Accept: text/event-stream`` (and can answer an error before the stream starts)."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.renderers import BaseRenderer

MEDIA_TYPE = "text/event-stream"
#: A comment line: keeps proxies from closing an idle stream.
KEEPALIVE = ": keepalive\n\n"


def sse_frame(event: str, data_json: str, event_id: Any = None) -> str:
    """One event: ``event: <name>`` (``id: <id>``) ``data: <json>`` and a blank line."""
    head = f"event: {event}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    return f"{head}data: {data_json}\n\n"


class EventStreamRenderer(BaseRenderer):
    """Renders a non-stream answer (an error) as one ``event: error`` frame."""

    media_type = MEDIA_TYPE
    format = "event-stream"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return sse_frame("error", json.dumps(data, separators=(",", ":"))).encode()
