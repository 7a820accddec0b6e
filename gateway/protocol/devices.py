"""Wire models of the device and node methods (OpenClaw node host: pairing, node.invoke).

Params a node host sends (``node.event``, ``node.invoke.result``, the ``*.update`` reports)
accept fields we do not use (:class:`~gateway.protocol.base.Open`): newer node hosts add
some, and refusing them would make the node retry forever.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.protocol.base import Frame, Open


class RequestIdParams(Frame):
    """``{requestId}`` (``node.pair.approve|reject``, ``device.pair.approve|reject``)."""

    request_id: str = Field(alias="requestId", min_length=1, max_length=128)


class DevicePairApproveParams(RequestIdParams):
    """``device.pair.approve``: ``scopes`` overrides what the device asked for."""

    scopes: list[str] | None = Field(default=None, max_length=16)


class DeviceIdParams(Frame):
    """``{deviceId}`` (``device.pair.remove``, ``device.token.rotate|revoke``)."""

    device_id: str = Field(alias="deviceId", min_length=1, max_length=128)


class NodeIdParams(Frame):
    """``{nodeId}`` (``node.describe``, ``node.pair.remove``)."""

    node_id: str = Field(alias="nodeId", min_length=1, max_length=128)


class NodeRenameParams(NodeIdParams):
    display_name: str = Field(alias="displayName", min_length=1, max_length=256)


class NodeInvokeParams(Frame):
    """``node.invoke``."""

    node_id: str = Field(alias="nodeId", min_length=1, max_length=128)
    command: str = Field(min_length=1, max_length=256)
    params: Any = None
    timeout_ms: int | None = Field(default=None, alias="timeoutMs", ge=1, le=600_000)
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey", max_length=256)


class NodeInvokeCancelParams(Frame):
    """``node.invoke.cancel``."""

    invoke_id: str = Field(alias="invokeId", min_length=1, max_length=128)
    node_id: str = Field(alias="nodeId", min_length=1, max_length=128)


class NodeInvokeError(Open):
    code: str | None = None
    message: str | None = None


class NodeInvokeResultParams(Open):
    """``node.invoke.result`` from the node."""

    id: str = Field(min_length=1, max_length=128)
    node_id: str | None = Field(default=None, alias="nodeId", max_length=128)
    ok: bool
    payload: Any = None
    payload_json: str | None = Field(default=None, alias="payloadJSON")
    error: NodeInvokeError | None = None


class NodeEventParams(Open):
    """``node.event {event, payloadJSON}`` from the node."""

    event: str = Field(min_length=1, max_length=256)
    payload_json: str | None = Field(default=None, alias="payloadJSON")
    payload: Any = None


class NodeReportParams(Open):
    """``node.runnerInventory.update`` / ``node.skills.update`` / ``node.pluginTools.update``."""
