"""Every method declares a scope, and a caller without it is refused ``FORBIDDEN`` naming it
(table-driven over the whole registry, through the real ASGI app)."""

from __future__ import annotations

import pytest

from gateway.rpc.registry import registry
from gateway.security import scopes
from tests.nodes.conftest import connect_node, operator

pytestmark = pytest.mark.django_db(transaction=True)

#: For each scope, operator scopes that do NOT satisfy it.
LACKING = {
    scopes.READ: [scopes.PAIRING],
    scopes.WRITE: [scopes.READ, scopes.PAIRING],
    scopes.ADMIN: [scopes.READ, scopes.WRITE, scopes.PAIRING],
    scopes.PAIRING: [scopes.READ, scopes.WRITE],
    scopes.NODE: list(scopes.OPERATOR_SCOPES),
}


def test_every_method_declares_a_known_scope() -> None:
    methods = registry.all()
    assert len(methods) > 30
    for m in methods:
        assert m.scope in scopes.ALL_SCOPES, m.name
    by_name = {m.name: m.scope for m in methods}
    assert by_name["node.invoke.result"] == scopes.NODE
    assert by_name["node.pair.approve"] == scopes.PAIRING
    assert by_name["node.list"] == scopes.READ
    assert by_name["agent"] == scopes.WRITE
    assert by_name["sessions.list"] == scopes.READ


def test_default_scope_from_the_name() -> None:
    assert scopes.default_scope("cron.list") == scopes.READ
    assert scopes.default_scope("rooms.get") == scopes.READ
    assert scopes.default_scope("cron.runs") == scopes.READ
    assert scopes.default_scope("cron.add") == scopes.WRITE
    assert scopes.default_scope("webhooks.delete") == scopes.WRITE
    with pytest.raises(ValueError):
        registry.method("x.y", scope="operator.root")


async def test_every_method_refuses_a_caller_without_its_scope(clients, token_auth) -> None:
    conns = {}
    for needed, held in LACKING.items():
        conns[needed] = await operator(clients, held)
    refused = []
    for m in registry.all():
        c = conns[m.scope]
        res = await c.call(m.name, {})
        assert res["ok"] is False, (m.name, res)
        err = res["error"]
        assert err["code"] == "FORBIDDEN", (m.name, err)
        assert m.scope in err["message"] and err["details"]["scope"] == m.scope, err
        refused.append(m.name)
    assert len(refused) == len(registry.all())


async def test_a_node_may_call_only_node_methods(clients, token_auth) -> None:
    node, res, _ = await connect_node(clients)
    assert res["ok"], res
    assert res["payload"]["auth"]["scopes"] == ["node"]
    for name in ("health", "node.list", "node.invoke", "agent"):
        got = await node.call(name, {})
        assert got["error"]["code"] == "FORBIDDEN", (name, got)


async def test_grants(clients, token_auth) -> None:
    """No scopes asked: every operator scope (CLI, Control UI, older clients); asked: those."""
    c = clients()
    res = await c.handshake(auth={"token": "secret"})
    assert res["payload"]["auth"] == {"role": "operator", "scopes": list(scopes.OPERATOR_SCOPES)}
    c2 = clients()
    res = await c2.handshake(auth={"token": "secret"}, role="operator", scopes=["operator.read"])
    assert res["payload"]["auth"]["scopes"] == ["operator.read"]
    assert (await c2.call("health", {}))["ok"]
    got = await c2.call("sessions.create", {})
    assert got["error"]["code"] == "FORBIDDEN" and "operator.write" in got["error"]["message"]
