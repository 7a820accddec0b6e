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

from gateway.bridge import forward, http
from gateway.bridge.http import SESSION_HEADER, BadRequest
from gateway.bridge.ops import do_poll, do_send
from gateway.bridge.queue import sse_event
from gateway.bridge.sessions import BridgeSession, registry
from gateway.delivery.hub import get_hub
from gateway.ws.writer import SOCKET_SCOPE_KEY

#: A batch may hold this many frames of ``maxPayload`` each, at most.
MAX_BATCH = 64
#: A forwarded send waits this long for the owner (it answers at once; a batch of calls may
#: take a moment).
FORWARDED_SEND_SECONDS = 10.0
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


def _session_id(scope: dict, params: dict[str, str]) -> str:
    session_id = http.header(scope, SESSION_HEADER) or params.get("session")
    if not session_id:
        raise BadRequest(400, "INVALID_REQUEST", "no session (X-Wingman-Session or ?session=)")
    return session_id


async def _locate(session_id: str) -> BridgeSession | str:
    """The session when it is here, else the seat id of the process holding it; 404 when
    neither (unknown or expired: start a new one)."""
    session = registry().get(session_id)
    if session is not None:
        return session
    owner = forward.owner_of(session_id)
    if owner is None or owner == (await get_hub()).id:
        raise BadRequest(404, "NOT_FOUND", "unknown or expired bridge session")
    return owner


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
    frames = _frames(await http.read_body(receive, limit))
    ack = http.int_param(params, "ack", 0)
    close = params.get("close") == "1"
    if http.header(scope, SESSION_HEADER) or params.get("session"):
        session_id = _session_id(scope, params)
        where = await _locate(session_id)
    else:
        where = await registry().create(scope)
        session_id = where.id
    headers = [*extra, (SESSION_HEADER.encode(), session_id.encode())]
    if isinstance(where, str):
        data = {"session": session_id, "frames": frames, "ack": ack, "close": close}
        status, body = await forward.forward(where, "send", data, wait=FORWARDED_SEND_SECONDS)
        await http.respond(send, status, body, headers)
        return
    answer = await do_send(where, frames, ack=ack, close=close)
    await http.respond(send, 200, answer, headers)


async def _poll(scope: dict, send, extra) -> None:
    params = http.query(scope)
    where = await _locate(_session_id(scope, params))
    cursor = http.int_param(params, "cursor", 0)
    cap = settings.WINGMAN.bridge.poll_timeout_ms
    seconds = min(http.int_param(params, "timeout", cap), cap) / 1000
    if isinstance(where, str):
        data = {"session": _session_id(scope, params), "cursor": cursor, "after": cursor}
        status, body = await forward.forward(
            where, "poll", {**data, "seconds": seconds}, wait=seconds
        )
        await http.respond(send, status, body, extra)
        return
    body = await do_poll(where, cursor=cursor, after=cursor, seconds=seconds)
    await http.respond(send, 200, body, extra)


def _resume_cursor(scope: dict, params: dict[str, str]) -> int:
    last_event = http.header(scope, "last-event-id")
    if last_event:
        return http.int_param({"id": last_event}, "id", 0)
    return http.int_param(params, "cursor", 0)


async def _sse(scope: dict, receive, send, extra) -> None:
    params = http.query(scope)
    session_id = _session_id(scope, params)
    where = await _locate(session_id)
    cursor = _resume_cursor(scope, params)
    headers = [
        (b"content-type", b"text/event-stream"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    gone = asyncio.get_running_loop().create_task(_disconnected(receive))
    if isinstance(where, str):
        try:
            await _stream_forwarded(where, session_id, cursor, send, gone)
        finally:
            gone.cancel()
        return
    session, queue = where, where.queue
    queue.ack(cursor)
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
    """Write frames as they are queued until the client leaves or the session ends: the
    backlog from here, then each new frame straight from its sender while the stream keeps
    up (``FrameQueue.send_text``); this loop writes whatever queued during a write."""
    queue = session.queue
    gone.add_done_callback(lambda _: queue.wake())  # a disconnect ends the wait at once
    await send({"type": "http.response.body", "body": b": ok\n\n", "more_body": True})

    async def write(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    queue.stream_cursor = cursor
    queue.stream_write = write
    try:
        await _stream_loop(session, cursor, send, gone, write)
    finally:
        if queue.stream_write is write:  # (a newer stream of the session may have taken over)
            queue.stream_write = None


async def _stream_loop(
    session: BridgeSession, cursor: int, send, gone: asyncio.Task, write
) -> None:
    queue = session.queue
    while not gone.done():
        if queue.writing:  # a sender is writing through (waiting for the socket): after it
            if queue.close_code is None:
                queue.loop_after_write = True
                await queue.wait(queue.last_id, seconds=SSE_KEEPALIVE_SECONDS)
            else:  # (a closed queue's wait returns at once)
                await asyncio.sleep(0.01)
            continue
        if queue.stream_write is write:  # what senders wrote through to it is out
            cursor = max(cursor, queue.stream_cursor)
        frames = queue.after(cursor)
        if frames:
            cursor = frames[-1][0]
            data = "".join(sse_event(fid, text) for fid, text in frames)
            queue.writing = True
            try:
                await write(data.encode())
            finally:
                queue.writing = False
            if queue.stream_write is write:
                queue.stream_cursor = cursor
            queue.mark_streamed(cursor)
            session.touch()
            continue
        if queue.close_code is not None:
            close = f'event: close\ndata: {{"code":{queue.close_code}}}\n\n'
            await send({"type": "http.response.body", "body": close.encode()})
            registry().drop(session.id)
            return
        await queue.wait(cursor, seconds=SSE_KEEPALIVE_SECONDS)  # or the client left
        if queue.stream_write is write:
            cursor = max(cursor, queue.stream_cursor)
        if not gone.done() and not queue.after(cursor) and queue.close_code is None:
            ping = {"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True}
            await send(ping)
    await send({"type": "http.response.body", "body": b""})


async def _stream_forwarded(
    owner: str, session_id: str, cursor: int, send, gone: asyncio.Task
) -> None:
    """An SSE stream here for a session held by another process: forwarded polls, each
    marking what it returns as streamed (the same bookkeeping as a local stream)."""
    await send({"type": "http.response.body", "body": b": ok\n\n", "more_body": True})
    acked = cursor
    while not gone.done():
        data = {"session": session_id, "cursor": acked, "after": cursor, "streamed": True}
        data["seconds"] = SSE_KEEPALIVE_SECONDS
        poll = asyncio.ensure_future(
            forward.forward(owner, "poll", data, wait=SSE_KEEPALIVE_SECONDS)
        )
        await asyncio.wait({poll, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not poll.done():
            poll.cancel()
            break
        status, body = poll.result()
        if status != 200:
            break
        answer = json.loads(body)
        frames = [(f["id"], json.dumps(f["frame"])) for f in answer["frames"]]
        if frames:
            cursor = frames[-1][0]
            text = "".join(sse_event(fid, frame) for fid, frame in frames)
            await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        elif answer["closed"] is not None:
            close = f'event: close\ndata: {{"code":{answer["closed"]}}}\n\n'
            await send({"type": "http.response.body", "body": close.encode()})
            return
        else:
            ping = {"type": "http.response.body", "body": b": keepalive\n\n", "more_body": True}
            await send(ping)
    await send({"type": "http.response.body", "body": b""})
