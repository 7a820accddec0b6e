"""``wingman nodes ...`` and ``wingman devices ...``: nodes and paired devices through a running
gateway (the ``node.*`` / ``device.*`` methods, so approvals reach connected nodes and publish
their events like any operator's).

A ``NODE`` or ``DEVICE`` argument is an id, a display name or a unique id prefix. Errors are
one ``wingman: ...`` line on stderr and exit 1: an unknown node or device, a refused call
(``INVALID_REQUEST: node command not allowed: ...``), an invoke that timed out, an
unreachable gateway (``wingman/remote_cli.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from wingman.remote_cli import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    add_connection_arguments,
    err,
    print_json,
    print_rows,
    with_gateway,
)

#: ``invoke --timeout`` default (ms), as ``node.invoke``'s.
INVOKE_TIMEOUT_MS = 30_000


class UnknownRef(Exception):
    """A NODE / DEVICE argument that names nothing (or more than one thing)."""


def _sub(top: argparse._SubParsersAction, name: str, summary: str, func, *args: str):
    """A sub-command with positional ``args`` (``"name:help"``) and the connection flags."""
    p = top.add_parser(name, help=summary)
    for arg in args:
        dest, _, help_text = arg.partition(":")
        p.add_argument(dest, metavar=dest.upper(), help=help_text)
    add_connection_arguments(p)
    p.set_defaults(func=func)
    return p


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser(
        "nodes",
        help="machines offering commands: pairing, invoke (through a running gateway)",
        description="Nodes (OpenClaw node hosts) through a running gateway. NODE: a node id, "
        "display name or unique id prefix; REQUEST: a requestId from `wingman nodes pending`.",
    )
    sub = p.add_subparsers(dest="nodes_command", metavar="COMMAND", required=True)
    _sub(sub, "list", "every known node: approval, connected, commands", cmd_nodes_list)
    _sub(sub, "pending", "node surfaces waiting for approval", cmd_nodes_pending)
    request = "request:the requestId (wingman nodes pending)"
    _sub(sub, "approve", "approve a pending node surface", cmd_nodes_approve, request)
    _sub(sub, "reject", "reject a pending node surface", cmd_nodes_reject, request)
    node = "node:node id, display name or unique id prefix"
    _sub(sub, "describe", "one node in detail", cmd_nodes_describe, node)
    _sub(sub, "rename", "rename a node", cmd_nodes_rename, node, "name:the new display name")
    _sub(sub, "remove", "forget a node's approval", cmd_nodes_remove, node)
    command = "command:the node command, e.g. system.which"
    q = _sub(
        sub, "invoke", "run an approved command, print the node's answer", cmd_invoke, node, command
    )
    q.add_argument(
        "--params",
        metavar="JSON",
        default=None,
        help="the command's params as JSON, e.g. '{\"a\":1}'",
    )
    q.add_argument(
        "--timeout",
        metavar="MS",
        type=int,
        default=INVOKE_TIMEOUT_MS,
        help="how long the node may take, in milliseconds (default 30000)",
    )

    p = top.add_parser(
        "devices",
        help="paired devices and device tokens (through a running gateway)",
        description="Paired devices through a running gateway. DEVICE: a device id, display "
        "name or unique id prefix; REQUEST: a requestId from `wingman devices pending`.",
    )
    sub = p.add_subparsers(dest="devices_command", metavar="COMMAND", required=True)
    _sub(sub, "list", "paired devices (never their tokens)", cmd_devices_list)
    _sub(sub, "pending", "devices waiting for approval", cmd_devices_pending)
    request = "request:the requestId (wingman devices pending)"
    q = _sub(sub, "approve", "approve a pending device", cmd_devices_approve, request)
    q.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        metavar="SCOPE",
        help="grant this scope instead of those it asked for (repeat)",
    )
    _sub(sub, "reject", "reject a pending device", cmd_devices_reject, request)
    device = "device:device id, display name or unique id prefix"
    _sub(sub, "remove", "forget a paired device (it must pair again)", cmd_devices_remove, device)
    _sub(sub, "rotate", "issue a new device token (shown once)", cmd_devices_rotate, device)
    _sub(sub, "revoke", "revoke the device's token", cmd_devices_revoke, device)


# plumbing ------------------------------------------------------------------------------------
def _resolve(rows: list[dict[str, Any]], ref: str, key: str, what: str) -> str:
    """The id of the row ``ref`` names: its id, its display name, or a unique id prefix."""
    for match in (
        [r for r in rows if r[key] == ref],
        [r for r in rows if r.get("displayName") == ref],
        [r for r in rows if r[key].startswith(ref)],
    ):
        if len(match) == 1:
            return match[0][key]
        if len(match) > 1:
            raise UnknownRef(f"{what} '{ref}' is ambiguous ({len(match)} match); use its id")
    raise UnknownRef(f"unknown {what} '{ref}' (see: wingman {what}s list)")


async def _node_id(client, ref: str) -> str:
    return _resolve((await client.call("node.list"))["nodes"], ref, "nodeId", "node")


async def _device_id(client, ref: str) -> str:
    paired = (await client.call("device.pair.list"))["paired"]
    return _resolve(paired, ref, "deviceId", "device")


def _run(args: argparse.Namespace, body) -> int:
    """``with_gateway`` where an unknown NODE / DEVICE is one line and exit 1."""

    async def guarded(client) -> int:
        try:
            return await body(client)
        except UnknownRef as exc:
            err(str(exc))
            return EXIT_FAIL

    return with_gateway(args, guarded)


def _call(args: argparse.Namespace, method: str, params: dict[str, Any], done) -> int:
    """One call; ``--json`` prints the answer, else ``done(answer)`` says what happened."""

    async def body(client) -> int:
        return _say(args, await client.call(method, params), done)

    return _run(args, body)


def _on(args: argparse.Namespace, ref: str, resolve, method: str, key: str, done) -> int:
    """Resolve the NODE / DEVICE argument ``ref``, then call ``method {key: id}``."""

    async def body(client) -> int:
        return _say(args, await client.call(method, {key: await resolve(client, ref)}), done)

    return _run(args, body)


def _say(args: argparse.Namespace, answer: dict[str, Any], done) -> int:
    if args.json:
        print_json(answer)
    else:
        print(done(answer))
    return EXIT_OK


def _seen(ms: int | None) -> str:
    if not ms:
        return "never"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# nodes ---------------------------------------------------------------------------------------
def _node_line(row: dict[str, Any]) -> str:
    state = "connected" if row.get("connected") else "offline"
    commands = ", ".join(row.get("commands") or []) or "no commands"
    name = row.get("displayName") or "(unnamed)"
    return f"{row['nodeId'][:16]}  {name} [{row.get('approvalState')}, {state}] — {commands}"


def cmd_nodes_list(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        nodes = (await client.call("node.list"))["nodes"]
        empty = "No nodes. Start one: openclaw node run --host <gateway host> --port <port>"
        return print_rows(nodes, as_json=args.json, empty=empty, line=_node_line)

    return _run(args, body)


def _node_request_line(row: dict[str, Any]) -> str:
    needs = ", ".join(row["requiredApproveScopes"])
    return (
        f"{row['requestId']}  {row.get('displayName') or row['nodeId'][:16]} "
        f"from {row.get('remoteIp') or '?'} — {', '.join(row['commands'])} (needs {needs})"
    )


def cmd_nodes_pending(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        pending = (await client.call("node.pair.list"))["pending"]
        empty = "No pending node requests."
        return print_rows(pending, as_json=args.json, empty=empty, line=_node_request_line)

    return _run(args, body)


def cmd_nodes_approve(args: argparse.Namespace) -> int:
    def done(answer: dict[str, Any]) -> str:
        node = answer["node"]
        return f"Approved {node.get('displayName') or node['nodeId']}: " + ", ".join(
            node.get("commands") or []
        )

    return _call(args, "node.pair.approve", {"requestId": args.request}, done)


def cmd_nodes_reject(args: argparse.Namespace) -> int:
    return _call(
        args,
        "node.pair.reject",
        {"requestId": args.request},
        lambda a: f"Rejected request {a['requestId']} of node {a['nodeId']}",
    )


def cmd_nodes_describe(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        row = await client.call("node.describe", {"nodeId": await _node_id(client, args.node)})
        if args.json:
            print_json(row)
            return EXIT_OK
        print(_node_line(row))
        print(f"  platform: {row.get('platform')} {row.get('version') or ''}".rstrip())
        seen = _seen(row.get("lastConnectedAtMs"))
        print(f"  address: {row.get('remoteIp') or '?'}, last connected {seen}")
        if row.get("pendingRequestId"):
            wanted = ", ".join(row.get("pendingDeclaredCommands") or [])
            print(f"  pending request {row['pendingRequestId']}: {wanted}")
        if row.get("hostStats"):
            print(f"  host stats: {json.dumps(row['hostStats'], ensure_ascii=False)}")
        return EXIT_OK

    return _run(args, body)


def cmd_nodes_rename(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        params = {"nodeId": await _node_id(client, args.node), "displayName": args.name}
        answer = await client.call("node.rename", params)
        return _say(args, answer, lambda a: f"Renamed {a['nodeId']} to {a['displayName']}")

    return _run(args, body)


def cmd_nodes_remove(args: argparse.Namespace) -> int:
    done = lambda a: f"Removed node {a['nodeId']}"  # noqa: E731
    return _on(args, args.node, _node_id, "node.pair.remove", "nodeId", done)


def cmd_invoke(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params) if args.params is not None else None
    except json.JSONDecodeError as exc:
        err(f"--params is not JSON: {exc}")
        return EXIT_USAGE
    if args.timeout <= 0:
        err("--timeout must be a positive number of milliseconds")
        return EXIT_USAGE

    async def body(client) -> int:
        request = {
            "nodeId": await _node_id(client, args.node),
            "command": args.command,
            "timeoutMs": args.timeout,
            "idempotencyKey": str(uuid.uuid4()),
        }
        if params is not None:
            request["params"] = params
        # the gateway answers TIMEOUT itself; wait a little longer than that
        answer = await client.call("node.invoke", request, wait_seconds=args.timeout / 1000 + 10)
        if args.json:
            print_json(answer)
            return EXIT_OK
        return _print_payload(answer.get("payload"))

    return _run(args, body)


def _print_payload(payload: Any) -> int:
    """A ``system.run`` answer as the program's own output (exit 1 when it failed); any
    other payload as JSON."""
    if isinstance(payload, dict) and "stdout" in payload and "exitCode" in payload:
        sys.stdout.write(payload.get("stdout") or "")
        sys.stderr.write(payload.get("stderr") or "")
        if payload.get("exitCode") != 0:
            err(f"the command exited with {payload.get('exitCode')}")
            return EXIT_FAIL
        return EXIT_OK
    print_json(payload)
    return EXIT_OK


# devices -------------------------------------------------------------------------------------
def _device_line(row: dict[str, Any]) -> str:
    token = "token" if row.get("hasToken") else "no token"
    return (
        f"{row['deviceId'][:16]}  {row.get('displayName') or '(unnamed)'} "
        f"[{row['role']}, {token}] {','.join(row.get('scopes') or []) or '-'} "
        f"at {row.get('address') or '?'}, last seen {_seen(row.get('lastSeenMs'))}"
    )


def _device_request_line(row: dict[str, Any]) -> str:
    return (
        f"{row['requestId']}  {row.get('displayName') or row['deviceId'][:16]} "
        f"[{row['role']}] {','.join(row.get('scopes') or []) or '-'} "
        f"from {row.get('remoteIp') or '?'}"
    )


def cmd_devices_list(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        paired = (await client.call("device.pair.list"))["paired"]
        empty = "No paired devices."
        return print_rows(paired, as_json=args.json, empty=empty, line=_device_line)

    return _run(args, body)


def cmd_devices_pending(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        pending = (await client.call("device.pair.list"))["pending"]
        empty = "No pending devices."
        return print_rows(pending, as_json=args.json, empty=empty, line=_device_request_line)

    return _run(args, body)


def cmd_devices_approve(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"requestId": args.request}
    if args.scopes:
        params["scopes"] = args.scopes

    def done(answer: dict[str, Any]) -> str:
        device = answer["device"]
        scopes = ",".join(device.get("scopes") or []) or "no scopes"
        return f"Approved device {device['deviceId']} ({device['role']}: {scopes})"

    return _call(args, "device.pair.approve", params, done)


def cmd_devices_reject(args: argparse.Namespace) -> int:
    return _call(
        args,
        "device.pair.reject",
        {"requestId": args.request},
        lambda a: f"Rejected request {a['requestId']} of device {a['deviceId']}",
    )


def cmd_devices_remove(args: argparse.Namespace) -> int:
    done = lambda a: f"Removed device {a['deviceId']}"  # noqa: E731
    return _on(args, args.device, _device_id, "device.pair.remove", "deviceId", done)


def cmd_devices_rotate(args: argparse.Namespace) -> int:
    def done(answer: dict[str, Any]) -> str:
        return (
            f"New token of {answer['deviceId']} (shown this once; the old one stopped working):"
            f"\n{answer['token']}"
        )

    return _on(args, args.device, _device_id, "device.token.rotate", "deviceId", done)


def cmd_devices_revoke(args: argparse.Namespace) -> int:
    done = lambda a: f"Revoked the token of {a['deviceId']}"  # noqa: E731
    return _on(args, args.device, _device_id, "device.token.revoke", "deviceId", done)
