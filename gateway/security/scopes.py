"""Roles and scopes: what a connection may call.

Every method declares one scope (``gateway/rpc/registry.py``). Operators hold some of
``operator.read|write|admin|pairing``; ``operator.admin`` satisfies every operator scope and
``operator.write`` satisfies ``operator.read`` (as in OpenClaw). Node-only methods need
:data:`NODE`, which only ``role: "node"`` connections hold (and they hold nothing else).

What a connection gets (:func:`grant`):

- role ``node``: ``["node"]``, whatever it asked for;
- an operator authenticated by the gateway secret, a logged-in browser session or with
  auth ``none``: the operator scopes it asked for; **when it asks for none** (the Wingman
  CLI, the Control UI, the jsonrpc and wingman-client dialects, every client written before
  scopes existed) it gets all of :data:`OPERATOR_SCOPES` (the default grant, so those
  clients keep working as before);
- an operator authenticated by a device token: the scopes it asked for that the device was
  approved with (all of them when it asked for none).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.protocol.errors import ErrorCode, GatewayError

READ = "operator.read"
WRITE = "operator.write"
ADMIN = "operator.admin"
PAIRING = "operator.pairing"
NODE = "node"

OPERATOR_SCOPES = (READ, WRITE, ADMIN, PAIRING)
ALL_SCOPES = frozenset((*OPERATOR_SCOPES, NODE))

#: Last name segments of methods that only read (``*.list``, ``*.get``, ``status``...).
READ_VERBS = frozenset(
    {
        "list",
        "get",
        "status",
        "history",
        "describe",
        "schema",
        "health",
        "ping",
        "presence",
        "system-presence",
        "stats",
        "runs",
        "wait",
        "subscribe",
        "unsubscribe",
        "pending",
    }
)


def default_scope(method: str) -> str:
    """The scope a method needs when its registration does not say: ``operator.read`` for
    names ending in a read verb (``cron.list``, ``rooms.get``, ``status``), else
    ``operator.write``. Methods that change configuration, pairing or run commands on
    machines must declare ``operator.admin`` / ``operator.pairing`` explicitly."""
    last = method.rsplit(".", 1)[-1]
    return READ if last in READ_VERBS or method in READ_VERBS else WRITE


def satisfies(held: Iterable[str], needed: str) -> bool:
    """Does a connection holding ``held`` have ``needed``?"""
    have = set(held)
    if needed in have:
        return True
    if needed == NODE:
        return False
    if ADMIN in have:
        return True
    return needed == READ and WRITE in have


def check(held: Iterable[str], needed: str, method: str) -> None:
    """Raise ``FORBIDDEN`` naming the missing scope."""
    if not satisfies(held, needed):
        raise GatewayError(
            ErrorCode.FORBIDDEN,
            f"missing scope: {needed} (method {method})",
            details={"scope": needed, "method": method},
        )


def grant(
    *, role: str, requested: Iterable[str] | None, allowed: Iterable[str] | None
) -> list[str]:
    """The scopes a connection holds. ``allowed`` is what its credential permits (None: every
    operator scope, the gateway secret); see the module docstring."""
    if role == "node":
        return [NODE]
    ceiling = list(OPERATOR_SCOPES if allowed is None else allowed)
    asked = [s for s in (requested or ()) if s in OPERATOR_SCOPES]
    if not asked:
        return ceiling
    return [s for s in dict.fromkeys(asked) if satisfies(ceiling, s)]
