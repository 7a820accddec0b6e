"""The nodes admin as a superuser uses it: the lists and pages render (never a token or its
hash), and each action changes state through the services (the same events and live node
surface as ``node.pair.approve`` & co.) and says what it did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from nodes import selectors
from nodes.models import Device, DevicePairingRequest, Node, NodePairingRequest
from nodes.services import devices, pairing
from tests.nodes.conftest import connect_node, event, operator

PAGES = ("node", "nodepairingrequest", "device", "devicepairingrequest")


def surface(node_id: str = "node-1", commands=("system.which",)) -> pairing.Surface:
    return pairing.Surface(
        node_id=node_id,
        display_name="build-box",
        platform="linux",
        version="2026.9.6",
        client_id="node-host",
        client_mode="node",
        device_family="Linux",
        remote_ip="10.0.0.7",
        path_env="/usr/bin",
        caps=["system"],
        commands=list(commands),
        permissions={},
    )


def claim(device_id: str, ip: str) -> devices.DeviceClaim:
    return devices.DeviceClaim(
        device_id=device_id,
        public_key=f"key-{device_id}",
        role="operator",
        scopes=["operator.read"],
        display_name=f"laptop {device_id}",
        platform="linux",
        client_id="cli",
        client_mode="cli",
        ip=ip,
        credential="shared",
    )


def act(client, page: str, action: str, *pks: str):
    """Run an admin action on the changelist; the page it ends on."""
    url = reverse(f"admin:nodes_{page}_changelist")
    return client.post(url, {"action": action, "_selected_action": list(pks)}, follow=True)


@pytest.fixture
def node_request() -> NodePairingRequest:
    _node, request, created = pairing.node_connected(surface=surface())
    assert created and request is not None
    return request


@pytest.fixture
def paired_device() -> Device:
    token, request = devices.device_admit(claim=claim("dev-paired", "127.0.0.1"))
    assert request is None and token["deviceToken"]
    return Device.objects.get(pk="dev-paired")


@pytest.fixture
def device_request() -> DevicePairingRequest:
    _token, request = devices.device_admit(claim=claim("dev-remote", "10.0.0.9"))
    assert request is not None
    return request


@pytest.mark.django_db
def test_lists_and_pages_render_without_token_hash(
    admin_client, node_request, paired_device, device_request
):
    for page in PAGES:
        listed = admin_client.get(reverse(f"admin:nodes_{page}_changelist"))
        assert listed.status_code == 200, page
        assert listed.context["cl"].result_count == 1, page
    shown = {
        "node": "node-1",
        "nodepairingrequest": node_request.pk,
        "device": paired_device.pk,
        "devicepairingrequest": device_request.pk,
    }
    for page, pk in shown.items():
        view = admin_client.get(reverse(f"admin:nodes_{page}_change", args=[pk]))
        assert view.status_code == 200, page
        assert b'name="_save"' not in view.content or page == "node", page  # read-only
    device_page = admin_client.get(reverse("admin:nodes_device_change", args=[paired_device.pk]))
    assert paired_device.token_hash.encode() not in device_page.content
    assert b"token_hash" not in device_page.content
    listed = admin_client.get(reverse("admin:nodes_device_changelist"))
    assert paired_device.token_hash.encode() not in listed.content
    assert admin_client.get(reverse("admin:nodes_device_add")).status_code == 403


@pytest.mark.django_db
def test_node_request_approve_and_reject(admin_client, node_request):
    page = act(admin_client, "nodepairingrequest", "approve", node_request.pk)
    assert "1 node request(s) approved." in page.content.decode()
    node = Node.objects.get(pk="node-1")
    assert node.approved_at is not None and node.commands == ["system.which"]
    node_request.refresh_from_db()
    assert node_request.status == "approved"
    # a wider surface asks again; rejecting it keeps the approved one
    _node, wider, _ = pairing.node_connected(surface=surface(commands=["system.which", "x.y"]))
    page = act(admin_client, "nodepairingrequest", "reject", wider.pk)
    assert "1 node request(s) rejected." in page.content.decode()
    wider.refresh_from_db()
    assert wider.status == "rejected"
    assert Node.objects.get(pk="node-1").commands == ["system.which"]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_request_that_is_not_pending_is_refused_and_nothing_changes(
    admin_client, node_request, action
):
    pairing.node_pair_reject(request_id=node_request.pk)
    page = act(admin_client, "nodepairingrequest", action, node_request.pk).content.decode()
    verb = f"{action}d" if action == "approve" else f"{action}ed"
    assert (
        f"Request {node_request.pk}: not {verb} (it is rejected); only a pending request can be."
        in (page)
    )
    assert "request(s) approved" not in page and "request(s) rejected" not in page
    node_request.refresh_from_db()
    assert node_request.status == "rejected"
    assert Node.objects.get(pk="node-1").approved_at is None
    # an expired one says so
    _node, again, _ = pairing.node_connected(surface=surface())
    NodePairingRequest.objects.filter(pk=again.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    page = act(admin_client, "nodepairingrequest", "approve", again.pk).content.decode()
    assert f"Request {again.pk}: not approved (it is expired)" in page
    assert Node.objects.get(pk="node-1").approved_at is None


@pytest.mark.django_db
def test_device_request_approve_reject(admin_client, device_request):
    other = devices.device_admit(claim=claim("dev-other", "10.0.0.10"))[1]
    page = act(admin_client, "devicepairingrequest", "approve", device_request.pk)
    assert "1 device request(s) approved." in page.content.decode()
    device = Device.objects.get(pk="dev-remote")
    assert device.scopes == ["operator.read"] and device.approved_at is not None
    page = act(admin_client, "devicepairingrequest", "reject", other.pk, device_request.pk)
    text = page.content.decode()
    assert "1 device request(s) rejected." in text
    assert f"Request {device_request.pk}: not rejected (it is approved)" in text
    assert DevicePairingRequest.objects.get(pk=other.pk).status == "rejected"
    assert not Device.objects.filter(pk="dev-other").exists()


@pytest.mark.django_db
def test_device_revoke_token_and_remove(admin_client, paired_device):
    page = act(admin_client, "device", "revoke_token", paired_device.pk)
    assert "Revoked the token of 1 device(s)." in page.content.decode()
    paired_device.refresh_from_db()
    assert paired_device.token_hash == ""
    assert devices.device_token_scopes(device_id=paired_device.pk, token="anything") is None
    url = reverse("admin:nodes_device_changelist")
    data = {"action": "delete_selected", "_selected_action": [paired_device.pk]}
    assert b"Are you sure" in admin_client.post(url, data).content
    assert Device.objects.filter(pk=paired_device.pk).exists()
    done = admin_client.post(url, {**data, "post": "yes"}, follow=True)
    assert b"Successfully deleted 1" in done.content
    assert not Device.objects.filter(pk=paired_device.pk).exists()


@pytest.mark.django_db
def test_node_rename_and_remove(admin_client, node_request):
    pairing.node_pair_approve(request_id=node_request.pk, caller_scopes=["operator.pairing"])
    url = reverse("admin:nodes_node_change", args=["node-1"])
    saved = admin_client.post(url, {"display_name": "renamed box"}, follow=True)
    assert saved.status_code == 200 and b"was changed successfully" in saved.content
    node = Node.objects.get(pk="node-1")
    assert node.display_name == "renamed box" and node.commands == ["system.which"]
    deleted = admin_client.post(
        reverse("admin:nodes_node_delete", args=["node-1"]), {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert not Node.objects.filter(pk="node-1").exists()


@pytest.mark.django_db(transaction=True)
async def test_approval_reaches_the_connected_node_and_operators(clients, token_auth, admin_client):
    """As node.pair.approve: the live node may run the command at once, and both the
    operators and the node hear ``node.pair.resolved``."""
    op = await operator(clients)
    await op.call("subscribe", {"events": ["node.pair.resolved"]})
    node, res, dev = await connect_node(clients, commands=["system.which"])
    assert res["ok"], res
    request = await NodePairingRequest.objects.aget(node_id=dev.device_id)
    assert (await sync_to_async(selectors.live_entry)(dev.device_id))["allowed"] == []
    page = await sync_to_async(act)(admin_client, "nodepairingrequest", "approve", request.pk)
    assert "1 node request(s) approved." in page.content.decode()
    for heard in (await event(op, "node.pair.resolved"), await event(node, "node.pair.resolved")):
        assert heard["requestId"] == request.pk and heard["decision"] == "approved"
    live = await sync_to_async(selectors.live_entry)(dev.device_id)
    assert live["allowed"] == ["system.which"] and live["pending"] is False
