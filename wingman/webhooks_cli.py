"""``wingman webhooks list|add|remove|rotate|test|deliveries``: manage webhooks in this state
dir's database (the services the REST API and the Control UI call).

A refusal is one line on stderr: exit 2 for bad input (the field named, nothing saved),
exit 1 for an unknown webhook, a gateway that cannot be reached, or a test delivery the
endpoint refused. ``--json`` prints the API's shapes.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("webhooks", help="manage webhooks (POST /webhooks/<id> starts an agent)")
    sub = p.add_subparsers(dest="webhooks_command", metavar="COMMAND", required=True)

    q = sub.add_parser("list", help="list webhooks")
    q.add_argument("--agent", dest="agent_id", help="only this agent's")
    _json_flag(q)
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("add", help="create a webhook and print its secret (shown once)")
    q.add_argument("--name", required=True, help="display name")
    q.add_argument("--agent", dest="agent_id", required=True, help="the agent each delivery runs")
    q.add_argument("--id", dest="webhook_id", help="the <id> in /webhooks/<id> (default: name)")
    q.add_argument("--preset", choices=["none", "gog-gmail"], help="payload format (default none)")
    q.add_argument("--event-label", help="label of deliveries whose body has no 'event' field")
    q.add_argument("--session", help="deliver into this existing session instead of a thread")
    q.add_argument(
        "--allow", action="append", metavar="ADDR", help="allowed address or CIDR (repeatable)"
    )
    q.add_argument("--require-signature", action="store_true", help="accept only signed deliveries")
    q.add_argument("--rate-limit", type=int, help="accepted deliveries per minute")
    q.add_argument("--disabled", action="store_true", help="create it disabled")
    _url_flag(q)
    _json_flag(q)
    q.set_defaults(func=cmd_add)

    q = sub.add_parser("remove", help="delete a webhook and its delivery log (the thread stays)")
    q.add_argument("webhook_id", metavar="ID")
    _json_flag(q)
    q.set_defaults(func=cmd_remove)

    q = sub.add_parser("rotate", help="new secret; the old one works for --grace seconds")
    q.add_argument("webhook_id", metavar="ID")
    q.add_argument("--grace", type=int, help="seconds the old secret keeps working (default 24 h)")
    _json_flag(q)
    q.set_defaults(func=cmd_rotate)

    q = sub.add_parser("test", help="send a sample delivery to the running gateway's endpoint")
    q.add_argument("webhook_id", metavar="ID")
    _url_flag(q)
    q.add_argument("--timeout", type=_positive(float), default=10.0, help="seconds (default 10)")
    _json_flag(q)
    q.set_defaults(func=cmd_test)

    q = sub.add_parser("deliveries", help="a webhook's recent deliveries, newest first")
    q.add_argument("webhook_id", metavar="ID")
    q.add_argument("--limit", type=_positive(int), default=20, help="how many (default 20)")
    _json_flag(q)
    q.set_defaults(func=cmd_deliveries)


def _positive(kind: type):
    """An argparse type: a number above zero (argparse names the flag when it is not)."""

    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (the REST API's shapes)")


def _url_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the gateway's base URL (default http://<configured host:port>)")


# helpers ------------------------------------------------------------------------------------
def _fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"wingman: {message}", file=sys.stderr)
    return code


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _ready() -> None:
    """The state dir's database, created or migrated (as ``agents list`` does)."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def base_url(url: str | None) -> str:
    """The gateway's HTTP base URL: ``--url``, else the configured host and port."""
    if url:
        return url.rstrip("/")
    from django.conf import settings

    cfg = settings.WINGMAN
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::") else cfg.host  # noqa: S104
    return f"http://{host}:{cfg.port}"


_FLAGS = {
    "name": "--name",
    "agentId": "--agent",
    "id": "--id",
    "eventLabel": "--event-label",
    "sessionId": "--session",
    "ipAllowlist": "--allow",
    "rateLimit": "--rate-limit",
    "graceSeconds": "--grace",
}


def _invalid(details: dict[str, list[str]]) -> int:
    """One line naming each refused flag."""
    parts = [f"{_FLAGS.get(field, field)}: {'; '.join(msgs)}" for field, msgs in details.items()]
    return _fail("invalid webhook: " + " | ".join(parts), EXIT_INVALID)


def _lookup(webhook_id: str):
    from gateway.protocol.errors import GatewayError
    from webhooks.wire import webhook_get

    try:
        return webhook_get(webhook_id)
    except GatewayError as exc:
        print(f"wingman: {exc.message}", file=sys.stderr)
        return None


# commands -----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from webhooks.selectors import webhook_list

    _ready()
    webhooks = webhook_list(agent_id=args.agent_id)
    if args.json:
        _print_json(webhooks)
        return EXIT_OK
    if not webhooks:
        print("No webhooks.")
    for hook in webhooks:
        state = "enabled" if hook["enabled"] else "disabled"
        signed = ", signed" if hook["requireSignature"] else ""
        print(
            f"{hook['id']}: {hook['name']} — agent {hook['agentId']}, preset {hook['preset']}, "
            f"{state}{signed}; POST {hook['path']}"
        )
    return EXIT_OK


def _add_params(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "id": args.webhook_id,
        "name": args.name,
        "agentId": args.agent_id,
        "preset": args.preset,
        "eventLabel": args.event_label,
        "sessionId": args.session,
        "ipAllowlist": args.allow,
        "rateLimit": args.rate_limit,
    }
    params = {key: value for key, value in given.items() if value is not None}
    if args.require_signature:
        params["requireSignature"] = True
    if args.disabled:
        params["enabled"] = False
    return params


def cmd_add(args: argparse.Namespace) -> int:
    from django.core.exceptions import ValidationError
    from pydantic import ValidationError as PydanticValidationError

    from gateway.api.exceptions import pydantic_detail
    from gateway.protocol.webhooks import WebhooksCreateParams
    from webhooks import services, snippets, wire

    try:
        params = WebhooksCreateParams.model_validate(_add_params(args))
    except PydanticValidationError as exc:
        return _invalid(pydantic_detail(exc))
    _ready()
    try:
        webhook, secret = services.webhook_create(**wire.service_fields(params, create=True))
    except ValidationError as exc:
        return _invalid(wire.wire_errors(exc))
    data = wire.webhook_secret_data(webhook, secret)
    url = base_url(args.url) + data["webhook"]["path"]
    if args.json:
        _print_json(data | {"url": url})
        return EXIT_OK
    print(f"Webhook {webhook.id!r} created for agent {webhook.agent_id!r}.")
    print(f"  endpoint: POST {url}")
    print(f"  secret:   {secret}")
    print("  (the secret is shown this once; `wingman webhooks rotate` makes a new one)")
    print(f"  try it:   {snippets.curl_command(url, secret)}")
    if webhook.preset == "gog-gmail":
        print(f"  gogcli:   {snippets.gog_command(url, secret)}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from webhooks import services

    _ready()
    webhook = _lookup(args.webhook_id)
    if webhook is None:
        return EXIT_FAIL
    services.webhook_delete(webhook=webhook)
    if args.json:
        _print_json({"id": args.webhook_id, "deleted": True})
    else:
        print(f"Webhook {args.webhook_id!r} removed (its thread stays).")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    from django.core.exceptions import ValidationError

    from webhooks import services, wire

    _ready()
    webhook = _lookup(args.webhook_id)
    if webhook is None:
        return EXIT_FAIL
    try:
        webhook, secret = services.webhook_rotate_secret(webhook=webhook, grace_seconds=args.grace)
    except ValidationError as exc:
        return _invalid(wire.wire_errors(exc))
    data = wire.webhook_secret_data(webhook, secret)
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"New secret for {webhook.id!r}: {secret}")
    if webhook.previous_secret_expires_at:
        until = webhook.previous_secret_expires_at.isoformat(timespec="seconds")
        print(f"  the previous secret keeps working until {until}")
    else:
        print("  the previous secret no longer works")
    return EXIT_OK


def cmd_test(args: argparse.Namespace) -> int:
    from gateway.protocol.errors import GatewayError
    from webhooks import probe

    _ready()
    webhook = _lookup(args.webhook_id)
    if webhook is None:
        return EXIT_FAIL
    try:
        result = probe.webhook_probe(
            webhook=webhook, base_url=base_url(args.url), timeout=args.timeout
        )
    except GatewayError as exc:
        return _fail(exc.message)
    data = result.as_dict()
    if args.json:
        _print_json(data)
    elif data["accepted"]:
        print(f"{data['status']} accepted: run {data['runId']} in session {data['sessionKey']}")
    else:
        detail = data["response"]
        if isinstance(detail, dict):
            detail = detail.get("error") or detail.get("detail") or json.dumps(detail)
        print(f"{data['status']} refused by {data['url']}: {detail}", file=sys.stderr)
    return EXIT_OK if data["accepted"] else EXIT_FAIL


def cmd_deliveries(args: argparse.Namespace) -> int:
    from webhooks.selectors import delivery_list

    _ready()
    if _lookup(args.webhook_id) is None:
        return EXIT_FAIL
    rows = delivery_list(webhook_id=args.webhook_id, limit=args.limit)
    if args.json:
        _print_json(rows)
        return EXIT_OK
    if not rows:
        print("No deliveries.")
    for row in rows:
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(row["receivedAt"] / 1000, UTC).isoformat(timespec="seconds")
        run = f" run {row['runId']}" if row["runId"] else ""
        print(f"{when} {row['status']} {row['reason']} from {row['sourceIp'] or '?'}{run}")
    return EXIT_OK
