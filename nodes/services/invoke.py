"""``node.invoke``: send a command to a node's connection and wait for its answer.

The node's connection (on whichever gateway process) is subscribed to the topic
``node:<nodeId>``; the invoke is published there as a ``node.invoke.request`` event. The
node answers with the ``node.invoke.result`` request on its own process, which relays it on
the topic ``nodeinvoke:<nodeId>`` that the waiting caller listens to. Both topics cross
processes through the channel layer (Redis), so caller and node need not share a process.
An invoke that is waited for has a key in the shared cache; whoever deletes it first
(result, timeout, cancel) decides it, so a late result is answered ``{ok, ignored: true}``.

The cache is called through :func:`gateway.state.cache.run`: no thread hop on the
local-memory cache (embedded), one hop per step on Redis instead of one per cache call
(Django's ``cache.aget`` & co. are ``sync_to_async`` wrappers; four of them were ~30% of
the gateway's CPU per invoke, ``wingman gateway bench --mode invoke``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from django.core.cache import cache

from gateway.delivery.hub import get_hub
from gateway.delivery.publish import publish_topic
from gateway.protocol import events as ev
from gateway.protocol.dialects.base import node_topic, now_ms
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.security import scopes
from gateway.state import cache as shared
from nodes.selectors import ADMIN_COMMANDS, live_key

DEFAULT_TIMEOUT_MS = 30_000
#: Commands never forwarded (the node's own approval store, private worker commands).
REFUSED_PREFIXES = ("system.execApprovals.", "worker.")
PENDING_MESSAGE = (
    "node command not allowed: the node's declared command surface is pending approval; "
    "run `openclaw nodes pending`, then `openclaw nodes approve <requestId>`"
)
#: Internal relay event names on ``nodeinvoke:<nodeId>`` (never sent to a socket).
RESULT, GONE, CANCELLED = "node.invoke.result", "node.gone", "node.invoke.cancelled"

_stats = {"nodeInvokes": 0, "nodeInvokeErrors": 0}


def result_topic(node_id: str) -> str:
    """The topic invoke results and disconnects of a node are relayed on."""
    return f"nodeinvoke:{node_id}"


def _invoke_key(invoke_id: str) -> str:
    return f"nodes:invoke:{invoke_id}"


def stats() -> dict[str, Any]:
    """This process's invoke figures (merged into ``/health`` stats)."""
    return dict(_stats)


def _unavailable(code: str, message: str, *, dispatched: bool) -> GatewayError:
    return GatewayError(
        ErrorCode.UNAVAILABLE,
        f"{code}: {message}",
        details={
            "nodeError": {"code": code, "message": message},
            "nodeCommandDispatched": dispatched,
        },
    )


def _check_command(live: dict[str, Any], command: str, caller_scopes: list[str]) -> None:
    if command.startswith(REFUSED_PREFIXES):
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"node command not allowed: {command}")
    if command not in live.get("allowed", ()):
        if command in live.get("commands", ()) and live.get("pending"):
            raise GatewayError(ErrorCode.INVALID_REQUEST, PENDING_MESSAGE)
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"node command not allowed: {command}")
    if command in ADMIN_COMMANDS:
        scopes.check(caller_scopes, scopes.ADMIN, f"node.invoke {command}")


async def node_invoke(
    *,
    node_id: str,
    command: str,
    params: Any,
    timeout_ms: int | None,
    idempotency_key: str | None,
    caller_scopes: list[str],
) -> dict[str, Any]:
    """Run ``command`` on the node; the OpenClaw result ``{ok, nodeId, command, payload,
    payloadJSON}``, or ``GatewayError`` (not connected, not allowed, node error, timeout,
    cancelled, disconnected)."""
    timeout = timeout_ms or DEFAULT_TIMEOUT_MS
    invoke_id = str(uuid.uuid4())
    hub = await get_hub()
    # Listen before reading the node's live entry: a node leaving after that read is then
    # heard (its GONE), never missed between the read and the listen.
    listener = await hub.listen(result_topic(node_id))
    try:
        live = await shared.run(
            _open_invoke,
            node_id=node_id,
            command=command,
            caller_scopes=caller_scopes,
            invoke_id=invoke_id,
            ttl=timeout // 1000 + 60,
        )
    except BaseException:
        await hub.unlisten(listener)
        raise
    request = {
        "id": invoke_id,
        "nodeId": node_id,
        "command": command,
        "paramsJSON": orjson.dumps(params).decode() if params is not None else None,
        "timeoutMs": timeout,
        "idempotencyKey": idempotency_key or invoke_id,
    }
    _stats["nodeInvokes"] += 1
    answer = await _round_trip(listener, node_id, live["connId"], request, timeout)
    return _result(node_id, command, answer)


def _open_invoke(
    *, node_id: str, command: str, caller_scopes: list[str], invoke_id: str, ttl: int
) -> dict[str, Any]:
    """The node's live entry, once the command is allowed; the invoke is then waited for
    (its key set). Sync: one cache step (:func:`gateway.state.cache.run`)."""
    live = cache.get(live_key(node_id))
    if live is None:
        raise GatewayError(ErrorCode.UNAVAILABLE, "node not connected")
    _check_command(live, command, caller_scopes)
    cache.set(_invoke_key(invoke_id), node_id, timeout=ttl)
    return live


def _decide(invoke_id: str, node_id: str | None = None) -> bool:
    """Take the decision on a waited-for invoke (of ``node_id``, when given): True for the
    one caller that deleted its key."""
    key = _invoke_key(invoke_id)
    if node_id is not None and cache.get(key) != node_id:
        return False
    return bool(cache.delete(key))


async def _round_trip(
    listener, node_id: str, conn_id: str, request: dict[str, Any], timeout_ms: int
) -> dict[str, Any]:
    """Publish the request and wait (on ``listener``, the node's result topic) for its
    answer; clean up whatever happens."""
    hub = await get_hub()
    invoke_id = request["id"]
    decided = False
    try:
        await publish_topic(node_topic(node_id), ev.NODE_INVOKE_REQUEST, request)
        async with asyncio.timeout(timeout_ms / 1000):
            async for event in listener:
                payload = orjson.loads(event.payload_json)
                if event.name == GONE and payload.get("connId") == conn_id:
                    decided = True
                    raise _unavailable("NODE_DISCONNECTED", "node disconnected", dispatched=True)
                if payload.get("id") != invoke_id:
                    continue
                decided = True
                if event.name == CANCELLED:
                    raise _unavailable("CANCELLED", "node invoke cancelled", dispatched=True)
                return payload
    except TimeoutError:
        _stats["nodeInvokeErrors"] += 1
        raise _unavailable(
            "TIMEOUT", f"node invoke timed out after {timeout_ms} ms", dispatched=True
        ) from None
    finally:
        await hub.unlisten(listener)
        if not decided and await shared.run(_decide, invoke_id):
            cancel = {"id": invoke_id, "invokeId": invoke_id, "nodeId": node_id}
            await publish_topic(node_topic(node_id), ev.NODE_INVOKE_CANCEL, cancel)
    raise _unavailable("NODE_DISCONNECTED", "node disconnected", dispatched=True)


def _result(node_id: str, command: str, answer: dict[str, Any]) -> dict[str, Any]:
    if not answer.get("ok"):
        _stats["nodeInvokeErrors"] += 1
        error = answer.get("error") or {}
        code = str(error.get("code") or "NODE_ERROR")
        raise _unavailable(code, str(error.get("message") or "node error"), dispatched=True)
    payload_json = answer.get("payloadJSON")
    payload = answer.get("payload")
    if payload_json is not None:
        try:
            payload = orjson.loads(payload_json)
        except orjson.JSONDecodeError:
            payload = payload_json
    elif payload is not None:
        payload_json = orjson.dumps(payload).decode()
    return {
        "ok": True,
        "nodeId": node_id,
        "command": command,
        "payload": payload,
        "payloadJSON": payload_json,
    }


async def node_invoke_result(*, node_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """A node answered an invoke: relay it to the waiting caller, or ``ignored`` when no one
    waits any more (timed out, cancelled, or not this node's)."""
    if not await shared.run(_decide, str(result.get("id")), node_id):
        return {"ok": True, "ignored": True}
    await publish_topic(result_topic(node_id), RESULT, result, key=str(result.get("id")))
    return {"ok": True}


async def node_invoke_cancel(*, node_id: str, invoke_id: str) -> dict[str, Any]:
    """Cancel a waiting invoke: the caller gets ``CANCELLED``, the node a cancel event."""
    if not await shared.run(_decide, invoke_id, node_id):
        return {"ok": True, "cancelled": False}
    await publish_topic(result_topic(node_id), CANCELLED, {"id": invoke_id, "nodeId": node_id})
    cancel = {"id": invoke_id, "invokeId": invoke_id, "nodeId": node_id}
    await publish_topic(node_topic(node_id), ev.NODE_INVOKE_CANCEL, cancel)
    return {"ok": True, "cancelled": True}


async def live_add(*, node_id: str, conn_id: str, entry: dict[str, Any]) -> None:
    """A node connected here: publish its live entry (``selectors.live_entry``)."""
    await cache.aset(
        live_key(node_id), {**entry, "connId": conn_id, "connectedAtMs": now_ms()}, None
    )


async def live_update(*, node_id: str, approved: list[str] | None) -> None:
    """The node's approved surface changed (None: removed): recompute what it may run."""
    entry = await cache.aget(live_key(node_id))
    if entry is None:
        return
    declared = entry.get("commands", [])
    entry["allowed"] = [c for c in declared if approved is not None and c in approved]
    entry["pending"] = approved is None or not set(declared) <= set(approved)
    await cache.aset(live_key(node_id), entry, None)


async def live_remove(*, node_id: str, conn_id: str) -> None:
    """A node's connection closed: drop its live entry (if still this connection's) and
    fail the invokes waiting for it."""
    entry = await cache.aget(live_key(node_id))
    if entry is not None and entry.get("connId") == conn_id:
        await cache.adelete(live_key(node_id))
    await publish_topic(result_topic(node_id), GONE, {"nodeId": node_id, "connId": conn_id})
