"""The operator's view of paired devices, nodes and their pairing requests.

Every decision goes through the services the gateway methods use (``nodes/services/
operator.py`` for approve, reject and remove, which also update a connected node's live
surface and publish ``node.pair.resolved`` / ``device.pair.resolved``; ``devices.py`` for
tokens; ``pairing.node_rename``), so it has the same effect as ``node.pair.approve`` & co.
Nothing else is editable here, and a device's token is never shown: only whether it has one
(the stored hash is not a field of any page).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.utils import timezone

from gateway.protocol.errors import GatewayError
from gateway.security import scopes
from nodes import selectors
from nodes.models import Device, DevicePairingRequest, Node, NodePairingRequest
from nodes.services import devices, operator, pairing


class DecisionAdmin(admin.ModelAdmin):
    """Read-only rows that operators act on: no add; the change page only views (the
    ``change`` permission gates the actions, ``has_change_permission(obj=None)``)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return self.fields or [f.name for f in self.model._meta.fields]


class RequestAdmin(DecisionAdmin):
    """Pairing requests: approve or reject the pending ones."""

    list_filter = ("status", "created_at")
    date_hierarchy = "created_at"
    actions = ["approve", "reject"]
    noun = "request"

    def decide(self, request, queryset, verb: str, decision) -> None:
        """Call ``decision(row)`` for each selected request; say what happened to each."""
        done = 0
        for row in queryset:
            try:
                async_to_sync(decision)(row)
            except GatewayError as refused:
                state = _state(type(row).objects.get(pk=row.pk))
                why = refused.message if state == "pending" else f"it is {state}"
                text = (
                    f"Request {row.request_id}: not {verb} ({why}); only a pending request can be."
                )
                self.message_user(request, text, messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} {self.noun}(s) {verb}.")


def _state(row) -> str:
    """A request's status, "expired" for a pending one past its time."""
    if row.status == "pending" and row.expires_at <= timezone.now():
        return "expired"
    return row.status


@admin.register(NodePairingRequest)
class NodePairingRequestAdmin(RequestAdmin):
    list_display = (
        "request_id",
        "display_name",
        "node_id",
        "commands",
        "remote_ip",
        "status",
        "created_at",
        "expires_at",
    )
    search_fields = ("request_id", "node_id", "display_name", "remote_ip")
    noun = "node request"

    @admin.action(permissions=["change"], description="Approve the selected node requests")
    def approve(self, request, queryset) -> None:
        """The node may run the request's commands (an admin user holds every operator
        scope, ``operator.admin`` for ``system.run`` included)."""
        held = list(scopes.OPERATOR_SCOPES)

        async def decision(row):
            await operator.node_approve(request_id=row.request_id, caller_scopes=held)

        self.decide(request, queryset, "approved", decision)

    @admin.action(permissions=["change"], description="Reject the selected node requests")
    def reject(self, request, queryset) -> None:
        async def decision(row):
            await operator.node_reject(request_id=row.request_id)

        self.decide(request, queryset, "rejected", decision)


@admin.register(DevicePairingRequest)
class DevicePairingRequestAdmin(RequestAdmin):
    list_display = (
        "request_id",
        "display_name",
        "device_id",
        "role",
        "scopes",
        "remote_ip",
        "status",
        "created_at",
        "expires_at",
    )
    list_filter = ("status", "role", "created_at")
    search_fields = ("request_id", "device_id", "display_name", "remote_ip")
    noun = "device request"

    @admin.action(permissions=["change"], description="Approve the selected device requests")
    def approve(self, request, queryset) -> None:
        """The device is paired with the scopes it asked for."""

        async def decision(row):
            await operator.device_approve(request_id=row.request_id)

        self.decide(request, queryset, "approved", decision)

    @admin.action(permissions=["change"], description="Reject the selected device requests")
    def reject(self, request, queryset) -> None:
        async def decision(row):
            await operator.device_reject(request_id=row.request_id)

        self.decide(request, queryset, "rejected", decision)


@admin.register(Device)
class DeviceAdmin(DecisionAdmin):
    list_display = (
        "device_id",
        "display_name",
        "role",
        "scopes",
        "platform",
        "address",
        "has_token",
        "last_seen",
    )
    list_filter = ("role", "platform")
    search_fields = ("device_id", "display_name", "address", "client_id")
    #: Every field but ``token_hash``.
    fields = (
        "device_id",
        "display_name",
        "role",
        "scopes",
        "platform",
        "client_id",
        "client_mode",
        "public_key",
        "address",
        "first_seen",
        "last_seen",
        "approved_at",
        "has_token",
        "token_rotated_at",
    )
    actions = ["revoke_token", "delete_selected"]

    @admin.display(boolean=True, description="token")
    def has_token(self, obj: Device) -> bool:
        return bool(obj.token_hash)

    @admin.action(permissions=["change"], description="Revoke the selected devices' tokens")
    def revoke_token(self, request, queryset) -> None:
        """Their device tokens stop working (the gateway secret still lets them in, and
        then issues a new token)."""
        ids = list(queryset.values_list("device_id", flat=True))
        for device_id in ids:
            devices.device_token_revoke(device_id=device_id)
        self.message_user(request, f"Revoked the token of {len(ids)} device(s).")

    def delete_model(self, request, obj: Device) -> None:
        devices.device_remove(device_id=obj.device_id)

    def delete_queryset(self, request, queryset) -> None:
        for device_id in list(queryset.values_list("device_id", flat=True)):
            devices.device_remove(device_id=device_id)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    """Nodes: rename one on its page; delete removes the approval (``node.pair.remove``)."""

    list_display = (
        "node_id",
        "display_name",
        "platform",
        "version",
        "approved",
        "connected",
        "commands",
        "last_connected_at",
    )
    list_filter = ("platform", "approved_at")
    search_fields = ("node_id", "display_name", "remote_ip")
    readonly_fields = [f.name for f in Node._meta.fields if f.name != "display_name"]

    def has_add_permission(self, request) -> bool:
        return False  # nodes appear by connecting

    @admin.display(boolean=True, description="approved")
    def approved(self, obj: Node) -> bool:
        return obj.approved_at is not None

    @admin.display(boolean=True, description="connected")
    def connected(self, obj: Node) -> bool:
        return selectors.live_entry(obj.node_id) is not None

    def save_model(self, request, obj: Node, form, change: bool) -> None:
        """Only the name is editable: renamed by the service (``node.rename``)."""
        pairing.node_rename(node_id=obj.node_id, display_name=obj.display_name)

    def delete_model(self, request, obj: Node) -> None:
        async_to_sync(operator.node_remove)(node_id=obj.node_id)

    def delete_queryset(self, request, queryset) -> None:
        for node_id in list(queryset.values_list("node_id", flat=True)):
            async_to_sync(operator.node_remove)(node_id=node_id)
