"""The handshake's device authority (``gateway/delivery/extensions.DeviceAuthority``):
device tokens, device pairing and, for ``role: "node"``, the node's live surface."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from gateway.delivery.extensions import Admission
from gateway.delivery.publish import publish
from gateway.protocol import events as ev
from gateway.protocol.dialects.base import ClientIdentity, now_ms
from gateway.security import scopes
from nodes import selectors
from nodes.services import devices, invoke, pairing

db = database_sync_to_async


class Authority:
    """See the module docstring."""

    async def device_token_scopes(self, device_id: str, token: str) -> list[str] | None:
        return await db(devices.device_token_scopes)(device_id=device_id, token=token)

    async def admit(self, admission: Admission) -> dict[str, Any]:
        client = admission.client
        extra: dict[str, Any] = {}
        if client.device_id is not None and admission.public_key is not None:
            claim = devices.DeviceClaim(
                device_id=client.device_id,
                public_key=admission.public_key,
                role=client.role,
                scopes=list(client.scopes),
                requested=list(admission.requested_scopes or client.scopes),
                display_name=client.display_name or "",
                platform=client.platform or "",
                client_id=client.client_id,
                client_mode=client.mode or "",
                ip=admission.ip,
                credential=client.credential,
                unattended=admission.unattended,
            )
            extra, request = await db(devices.device_admit)(claim=claim)
            if request is not None:
                await publish(ev.DEVICE_PAIR_REQUESTED, selectors.device_request_row(request))
                raise devices.not_paired(request)
        if admission.tool_node:
            await self._node_connected(admission)
        return extra

    async def _node_connected(self, admission: Admission) -> None:
        client = admission.client
        surface = pairing.Surface(
            node_id=client.node_id,
            display_name=client.display_name or "",
            platform=client.platform or "",
            version=client.version or "",
            client_id=client.client_id,
            client_mode=client.mode or "",
            device_family=client.device_family or "",
            remote_ip=admission.ip or "",
            path_env=client.path_env or "",
            caps=list(client.caps),
            commands=list(client.commands),
            permissions=dict(client.permissions),
        )
        node, request, created = await db(pairing.node_connected)(surface=surface)
        approved = set(node.commands) if node.approved_at else set()
        entry = {
            "caps": surface.caps,
            "commands": surface.commands,
            "allowed": [c for c in surface.commands if c in approved],
            "pending": request is not None,
        }
        await invoke.live_add(node_id=surface.node_id, conn_id=admission.conn_id, entry=entry)
        if created and request is not None:
            await publish(ev.NODE_PAIR_REQUESTED, await db(selectors.pending_row)(request))

    async def departed(self, conn_id: str, client: ClientIdentity) -> None:
        if client.scopes == [scopes.NODE]:  # a tool node (admission.tool_node)
            await invoke.live_remove(node_id=client.node_id, conn_id=conn_id)
        if client.device_id:
            await db(devices.device_seen)(device_id=client.device_id)


def resolved_payload(request_id: str, node_id: str, decision: str) -> dict[str, Any]:
    """``node.pair.resolved``'s payload."""
    return {"requestId": request_id, "nodeId": node_id, "decision": decision, "ts": now_ms()}
