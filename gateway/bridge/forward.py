"""Bridge requests that land on a process other than the one holding the session (a load
balancer without sticky sessions, Redis setup).

A session lives where it was created: its connection is in that process's hub, with its
subscriptions, presence and rate limit, exactly like a WebSocket. Its id starts with that
process's seat id (``<seat>~<random>``), so any process knows the owner without a lookup and
forwards ``send`` and ``poll`` to it as seat control messages (``bridge.request``); the owner
runs them (gateway/bridge/ops.py) and answers with ``bridge.reply``. An SSE stream on another
process is served by forwarded polls that mark their frames as streamed. Keeping the queue in
Redis instead would split one connection's state between a process (the protocol state
machine, its subscriptions) and Redis, and cost Redis round trips per frame on the common,
single-process path; forwarding costs two channel-layer messages per request, only when the
request did land elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import Any

from gateway.bridge.http import BadRequest
from gateway.bridge.ops import do_poll, do_send
from gateway.bridge.sessions import registry
from gateway.delivery.hub import get_hub

logger = logging.getLogger(__name__)

CONTROL_REQUEST = "bridge.request"
CONTROL_REPLY = "bridge.reply"
#: A forwarded request gets this long beyond its own wait before it is given up.
GRACE_SECONDS = 5.0

_pending: dict[str, asyncio.Future[tuple[int, str]]] = {}


def owner_of(session_id: str) -> str | None:
    """The seat id of the process holding a session (from the id's prefix)."""
    owner, sep, _ = session_id.partition("~")
    return owner if sep else None


async def forward(owner: str, op: str, data: dict[str, Any], *, wait: float) -> tuple[int, str]:
    """Run ``op`` on the owner's process: its (status, JSON body)."""
    hub = await get_hub()
    rid = secrets.token_hex(8)
    future: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    _pending[rid] = future
    try:
        message = {"rid": rid, "origin": hub.id, "op": op, **data}
        if not await hub.seat.send_control(owner, CONTROL_REQUEST, message):
            raise BadRequest(404, "NOT_FOUND", "unknown or expired bridge session")
        return await asyncio.wait_for(future, wait + GRACE_SECONDS)
    except TimeoutError:
        raise BadRequest(
            503, "UNAVAILABLE", "the gateway process holding this session did not answer"
        ) from None
    finally:
        _pending.pop(rid, None)


async def on_request(data: dict[str, Any]) -> None:
    """A forwarded request for a session here: run it aside (a poll waits), then reply."""
    hub = await get_hub()
    hub.spawn(_answer(hub, data))


async def _answer(hub, data: dict[str, Any]) -> None:
    try:
        status, body = 200, await _run(data)
    except BadRequest as err:
        status, body = err.status, json.dumps({"error": {"code": err.code, "message": err.message}})
    reply = {"rid": data["rid"], "status": status, "body": body}
    await hub.seat.send_control(data["origin"], CONTROL_REPLY, reply)


async def _run(data: dict[str, Any]) -> str:
    session = registry().get(data.get("session"))
    if session is None:
        raise BadRequest(404, "NOT_FOUND", "unknown or expired bridge session")
    if data["op"] == "send":
        answer = await do_send(
            session, data["frames"], ack=data.get("ack", 0), close=data.get("close", False)
        )
        return json.dumps(answer)
    return await do_poll(
        session,
        cursor=data["cursor"],
        after=data["after"],
        seconds=data["seconds"],
        streamed=data.get("streamed", False),
    )


async def on_reply(data: dict[str, Any]) -> None:
    """The owner answered a request forwarded from here."""
    future = _pending.get(data.get("rid", ""))
    if future is not None and not future.done():
        future.set_result((data["status"], data["body"]))
