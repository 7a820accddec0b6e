"""The HTTP bridge endpoints, a plain ASGI app mounted before Django (wingman/asgi.py).

- ``POST /bridge/send``: one frame (a JSON object) or a batch (a JSON array of them) for the
  session named by ``X-Wingman-Session`` / ``?session=``; without one a new session is
  created (its ``connect.challenge`` is its first frame). Answers at once with
  ``{"session", "accepted", "closed"}``; replies and events come through poll or sse.
  ``?ack=N`` acknowledges frames like a poll's cursor; ``?close=1`` ends the session after
  its frames (like closing a WebSocket: presence goes at once).
- ``GET /bridge/poll?session=&cursor=N&timeout=MS``: acknowledges frames up to ``N``, waits
  (at most ``gateway.bridge.pollTimeoutMs``) until a frame after ``N`` is queued and
  returns ``{"session", "frames": [{"id", "frame"}], "cursor", "closed"}``.
- ``GET /bridge/sse?session=``: the same frames as Server-Sent Events (``id:`` = frame id),
  resuming after ``Last-Event-ID`` (or ``?cursor=``); ``event: close`` ends a closed session.
"""

from __future__ import annotations

import asyncio
import json

from django.conf import settings

from gateway.bridge import http
from gateway.bridge.http import SESSION_HEADER, BadRequest
from gateway.bridge.sessions import BridgeSession, registry
from gateway.protocol.errors import CloseCode
from gateway.ws.writer import SOCKET_SCOPE_KEY

#: A batch may hold this many frames of ``maxPayload`` each, at most.
MAX_BATCH = 64
#: An idle SSE stream gets a comment line this often (proxies drop silent connections).
SSE_KEEPALIVE_SECONDS = 15.0


async def bridge_app(scope: dict, receive, send) -> None:
    """Route a ``/bridge/*`` request; every error is a JSON answer with a status."""
    extra = http.cors_headers(scope)
    try:
        if not settings.WINGMAN.bridge.enabled:
            raise BadRequest(404, "NOT_FOUND", "the HTTP bridge is disabled")
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":
            await http.preflight(scope, send)
        elif path == "/bridge/send" and method == "POST":
            await _send(scope, receive, send, extra)
        elif path == "/bridge/poll" and method == "GET":
            await _poll(scope, send, extra)
        elif path == "/bridge/sse" and method == "GET":
            await _sse(scope, receive, send, extra)
        elif path in ("/bridge/send", "/bridge/poll", "/bridge/sse"):
            raise BadRequest(405, "INVALID_REQUEST", f"{method} not allowed on {path}")
        else:
            raise BadRequest(404, "NOT_FOUND", f"no bridge endpoint {path}")
    except BadRequest as err:
        error = {"error": {"code": err.code, "message": err.message}}
        await http.respond(send, err.status, error, extra)


def _session(scope: dict, params: dict[str, str]) -> BridgeSession:
    """The request's session, or ``BadRequest`` 404 (unknown or expired: start a new one)."""
    session_id = http.header(scope, SESSION_HEADER) or params.get("session")
    if not session_id:
        raise BadRequest(400, "INVALID_REQUEST", "no session (X-Wingman-Session or ?session=)")
    session = registry().get(session_id)
    if session is None:
        raise BadRequest(404, "NOT_FOUND", "unknown or expired bridge session")
    return session


def _frames(body: bytes) -> list[str]:
    """The frames of a send body: a batch (array) is split, anything else is one frame that
    the connection judges exactly as a WebSocket frame (bad JSON gets its protocol error)."""
    text = body.decode("utf-8", errors="replace")
    if not text.lstrip().startswith("["):
        return [text]
    try:
        batch = json.loads(text)
    except ValueError as exc:
        raise BadRequest(400, "INVALID_REQUEST", f"invalid batch: {exc}") from None
    if len(batch) > MAX_BATCH:
        raise BadRequest(413, "PAYLOAD_TOO_LARGE", f"a batch holds at most {MAX_BATCH} frames")
    return [json.dumps(frame, separators=(",", ":")) for frame in batch]


async def _send(scope: dict, receive, send, extra) -> None:
    params = http.query(scope)
    limit = settings.WINGMAN.policy.max_payload * MAX_BATCH
    body = await http.read_body(receive, limit)
    frames = _frames(body)
    if http.header(scope, SESSION_HEADER) or params.get("session"):
        session = _session(scope, params)
    else:
        session = await registry().create(scope)
    ack = http.int_param(params, "ack", 0)
    if ack:
        session.queue.ack(ack)
    accepted = await session.receive(frames)
    if params.get("close") == "1":
        await session.connection.close(CloseCode.NORMAL)
        registry().drop(session.id)
    answer = {"session": session.id, "accepted": accepted, "closed": session.queue.close_code}
    headers = [*extra, (SESSION_HEADER.encode(), session.id.encode())]
    await http.respond(send, 200, answer, headers)


async def _poll(scope: dict, send, extra) -> None:
    params = http.query(scope)
    session = _session(scope, params)
    cursor = http.int_param(params, "cursor", 0)
    cap = settings.WINGMAN.bridge.poll_timeout_ms
    timeout = min(http.int_param(params, "timeout", cap), cap) / 1000
    queue = session.queue
    queue.ack(cursor)
    session.readers += 1
    session.touch()
    try:
        await queue.wait(cursor, seconds=timeout)
    finally:
        session.readers -= 1
        session.touch()
    frames = queue.after(cursor)
    last = frames[-1][0] if frames else max(cursor, queue.acked)
    items = ",".join(f'{{"id":{fid},"frame":{text}}}' for fid, text in frames)
    closed = json.dumps(queue.close_code)
    body = (
        f'{{"session":{json.dumps(session.id)},"frames":[{items}],'
        f'"cursor":{last},"closed":{closed}}}'
    )
    if not frames:
        registry().finished(session)
    await http.respond(send, 200, body, extra)


def _resume_cursor(scope: dict, params: dict[str, str]) -> int:
    last_event = http.header(scope, "last-event-id")
    if last_event:
        return http.int_param({"id": last_event}, "id", 0)
    return http.int_param(params, "cursor", 0)


async def _sse(scope: dict, receive, send, extra) -> None:
    params = http.query(scope)
    session = _session(scope, params)
    cursor = _resume_cursor(scope, params)
    queue = session.queue
    queue.ack(cursor)
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.get_running_loop().create_task(_disconnected(receive))
    session.readers += 1
    queue.stream_socket = scope.get(SOCKET_SCOPE_KEY)
    try:
        await _stream(session, cursor, send, gone)
    finally:
        gone.cancel()
        queue.stream_socket = None
        session.readers -= 1
        session.touch()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _stream(session: BridgeSession, cursor: int, send, gone: asyncio.Task) -> None:
    """Write frames as they are queued until the client leaves or the session ends."""
    queue = session.queue
    await send({"type": "http.response.body", "body": b": ok\n\n", "more_body": True})
    while not gone.done():
        frames = queue.after(cursor)
        if frames:
            cursor = frames[-1][0]
            data = "".join(_event(fid, text) for fid, text in frames)
            await send({"type": "http.response.body", "body": data.encode(), "more_body": True})
            queue.mark_streamed(cursor)
            session.touch()
            continue
        if queue.close_code is not None:
            close = f'event: close\ndata: {{"code":{queue.close_code}}}\n\n'
            await send({"type": "http.response.body", "body": close.encode()})
            registry().drop(session.id)
            return
        waiter = asyncio.ensure_future(queue.wait(cursor, seconds=SSE_KEEPALIVE_SECONDS))
        await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
        elif not queue.after(cursor) and queue.close_code is None:
            ping = {"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True}
            await send(ping)
    await send({"type": "http.response.body", "body": b""})


def _event(fid: int, text: str) -> str:
    data = "\n".join(f"data: {line}" for line in text.split("\n"))
    return f"id: {fid}\n{data}\n\n"
