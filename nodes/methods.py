"""Device and node methods on the gateway's method registry (OpenClaw's names and shapes).

Scopes: pairing and device management need ``operator.pairing``; listing nodes
``operator.read``; ``node.invoke`` ``operator.write`` (``system.run`` also
``operator.admin``); what a node host itself calls needs role ``node``.
"""

from __future__ import annotations

from typing import Any

import orjson
from channels.db import database_sync_to_async

from gateway.protocol.devices import (
    DeviceIdParams,
    DevicePairApproveParams,
    NodeEventParams,
    NodeIdParams,
    NodeInvokeCancelParams,
    NodeInvokeParams,
    NodeInvokeResultParams,
    NodeRenameParams,
    NodeReportParams,
    RequestIdParams,
)
from gateway.protocol.dialects.base import now_ms
from gateway.protocol.errors import ErrorCode, GatewayError
from gateway.protocol.system import NoParams
from gateway.rpc import CallContext, registry
from gateway.security import scopes
from nodes import selectors
from nodes.services import devices, invoke, operator, pairing

db = database_sync_to_async
PAIRING, READ, WRITE, NODE = scopes.PAIRING, scopes.READ, scopes.WRITE, scopes.NODE


def _caller(ctx: CallContext) -> tuple[str, list[str]]:
    client = ctx.client
    if client is None:
        raise GatewayError(ErrorCode.UNAUTHORIZED, "not authenticated")
    return client.node_id, list(client.scopes)


# devices ---------------------------------------------------------------------------------
@registry.method("device.pair.list", NoParams, scope=PAIRING)
async def device_pair_list(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Pending device pairing requests and paired devices."""
    return await db(selectors.device_pair_list)()


@registry.method("device.pair.approve", DevicePairApproveParams, scope=PAIRING)
async def device_pair_approve(ctx: CallContext, params: DevicePairApproveParams) -> dict[str, Any]:
    """Approve a pending device (it may then connect and gets a device token)."""
    wanted = params.scopes
    if wanted is not None:
        for scope in wanted:  # an operator cannot hand out more than it holds
            scopes.check(_caller(ctx)[1], scope, "device.pair.approve")
    device = await operator.device_approve(request_id=params.request_id, scopes=wanted)
    payload = {"requestId": params.request_id, "deviceId": device.device_id}
    return {**payload, "device": selectors.device_row(device)}


@registry.method("device.pair.reject", RequestIdParams, scope=PAIRING)
async def device_pair_reject(ctx: CallContext, params: RequestIdParams) -> dict[str, Any]:
    """Reject a pending device."""
    request = await operator.device_reject(request_id=params.request_id)
    return {"requestId": request.request_id, "deviceId": request.device_id}


@registry.method("device.pair.remove", DeviceIdParams, scope=PAIRING)
async def device_pair_remove(ctx: CallContext, params: DeviceIdParams) -> dict[str, Any]:
    """Forget a paired device."""
    await db(devices.device_remove)(device_id=params.device_id)
    return {"deviceId": params.device_id}


@registry.method("device.token.rotate", DeviceIdParams, scope=PAIRING)
async def device_token_rotate(ctx: CallContext, params: DeviceIdParams) -> dict[str, Any]:
    """Issue a new device token (shown once); the old one stops working."""
    token = await db(devices.device_token_rotate)(device_id=params.device_id)
    return {"deviceId": params.device_id, "token": token}


@registry.method("device.token.revoke", DeviceIdParams, scope=PAIRING)
async def device_token_revoke(ctx: CallContext, params: DeviceIdParams) -> dict[str, Any]:
    """Revoke the device's token."""
    await db(devices.device_token_revoke)(device_id=params.device_id)
    return {"deviceId": params.device_id, "revoked": True}


# node pairing ----------------------------------------------------------------------------
@registry.method("node.pair.list", NoParams, scope=PAIRING)
async def node_pair_list(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Pending node surfaces and approved nodes."""
    return await db(selectors.node_pair_list)()


@registry.method("node.pair.approve", RequestIdParams, scope=PAIRING)
async def node_pair_approve(ctx: CallContext, params: RequestIdParams) -> dict[str, Any]:
    """Approve a node's declared surface (``system.run`` in it: ``operator.admin`` too)."""
    node = await operator.node_approve(request_id=params.request_id, caller_scopes=_caller(ctx)[1])
    return {"requestId": params.request_id, "node": selectors.paired_row(node)}


@registry.method("node.pair.reject", RequestIdParams, scope=PAIRING)
async def node_pair_reject(ctx: CallContext, params: RequestIdParams) -> dict[str, Any]:
    """Reject a node's declared surface."""
    request = await operator.node_reject(request_id=params.request_id)
    return {"requestId": request.request_id, "nodeId": request.node_id}


@registry.method("node.pair.remove", NodeIdParams, scope=PAIRING)
async def node_pair_remove(ctx: CallContext, params: NodeIdParams) -> dict[str, Any]:
    """Forget a node's approval (a connected node can run nothing until approved again)."""
    await operator.node_remove(node_id=params.node_id)
    return {"nodeId": params.node_id}


@registry.method("node.rename", NodeRenameParams, scope=PAIRING)
async def node_rename(ctx: CallContext, params: NodeRenameParams) -> dict[str, Any]:
    """Rename a node."""
    node = await db(pairing.node_rename)(node_id=params.node_id, display_name=params.display_name)
    return {"nodeId": node.node_id, "displayName": node.display_name}


# node views ------------------------------------------------------------------------------
@registry.method("node.list", NoParams, scope=READ)
async def node_list(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """Every known node with its approval state and whether it is connected."""
    return {"ts": now_ms(), "nodes": await db(selectors.node_list)()}


@registry.method("node.describe", NodeIdParams, scope=READ)
async def node_describe(ctx: CallContext, params: NodeIdParams) -> dict[str, Any]:
    """One node."""
    row = await db(selectors.node_describe)(node_id=params.node_id)
    if row is None:
        raise GatewayError(ErrorCode.INVALID_REQUEST, f"unknown nodeId: {params.node_id}")
    return {"ts": now_ms(), **row}


# invoke ----------------------------------------------------------------------------------
@registry.method("node.invoke", NodeInvokeParams, scope=WRITE)
async def node_invoke(ctx: CallContext, params: NodeInvokeParams) -> dict[str, Any]:
    """Run an approved command on a connected node and answer with its result."""
    return await invoke.node_invoke(
        node_id=params.node_id,
        command=params.command,
        params=params.params,
        timeout_ms=params.timeout_ms,
        idempotency_key=params.idempotency_key,
        caller_scopes=_caller(ctx)[1],
    )


@registry.method("node.invoke.cancel", NodeInvokeCancelParams, scope=WRITE)
async def node_invoke_cancel(ctx: CallContext, params: NodeInvokeCancelParams) -> dict[str, Any]:
    """Cancel a waiting invoke (its caller gets ``CANCELLED``)."""
    return await invoke.node_invoke_cancel(node_id=params.node_id, invoke_id=params.invoke_id)


# what the node itself calls --------------------------------------------------------------
@registry.method("node.invoke.result", NodeInvokeResultParams, scope=NODE)
async def node_invoke_result(ctx: CallContext, params: NodeInvokeResultParams) -> dict[str, Any]:
    """The node's answer to an invoke (``ignored`` when no one waits for it any more)."""
    node_id, _ = _caller(ctx)
    result = params.model_dump(by_alias=True, exclude_none=True)
    return await invoke.node_invoke_result(node_id=node_id, result=result)


@registry.method("node.event", NodeEventParams, scope=NODE)
async def node_event(ctx: CallContext, params: NodeEventParams) -> dict[str, Any]:
    """An event from the node: ``node.host.stats`` is stored; others are acknowledged."""
    node_id, _ = _caller(ctx)
    if params.event != "node.host.stats":
        return {"ok": True, "event": params.event, "handled": False, "reason": "ignored"}
    try:
        stats = orjson.loads(params.payload_json) if params.payload_json else params.payload
    except orjson.JSONDecodeError:
        return {"ok": True, "event": params.event, "handled": False, "reason": "invalid-json"}
    if not isinstance(stats, dict):
        return {"ok": True, "event": params.event, "handled": False, "reason": "invalid-payload"}
    await db(pairing.node_host_stats)(node_id=node_id, stats=stats)
    return {"ok": True, "event": params.event, "handled": True}


async def _report(ctx: CallContext) -> dict[str, Any]:
    """The ``*.update`` reports: refused while the node's surface awaits approval (the node
    host retries and re-publishes on ``node.pair.resolved``), else ``{nodeId}``."""
    node_id, _ = _caller(ctx)
    live = await db(selectors.live_entry)(node_id)
    if live is not None and live.get("pending"):
        raise GatewayError(
            ErrorCode.UNAVAILABLE,
            "node capability surface is awaiting operator approval; "
            "run `openclaw nodes approve <requestId>`",
        )
    return {"nodeId": node_id}


@registry.method("node.runnerInventory.update", NodeReportParams, scope=NODE)
async def node_runner_inventory_update(ctx: CallContext, params: NodeReportParams) -> dict:
    """The node's runner inventory."""
    return await _report(ctx)


@registry.method("node.skills.update", NodeReportParams, scope=NODE)
async def node_skills_update(ctx: CallContext, params: NodeReportParams) -> dict:
    """The node's skills."""
    return await _report(ctx)


@registry.method("node.pluginTools.update", NodeReportParams, scope=NODE)
async def node_plugin_tools_update(ctx: CallContext, params: NodeReportParams) -> dict:
    """The node's plugin tools."""
    return await _report(ctx)
