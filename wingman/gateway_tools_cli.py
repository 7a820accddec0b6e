"""``wingman gateway token|health|schema``: small tools beside the server commands."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import urllib.error
import urllib.request

EXIT_OK = 0
EXIT_FAIL = 1


def add_commands(sub) -> None:
    """Register ``token``, ``health`` and ``schema`` under ``wingman gateway``."""
    p = sub.add_parser("token", help="gateway token utilities")
    p.add_argument("--generate", action="store_true", help="print a new random token")
    p.set_defaults(func=cmd_token, needs_django=False)

    p = sub.add_parser("health", help="query GET /health; exit 0 only when healthy")
    p.add_argument("--url", help="gateway URL (ws:// or http://; default from config)")
    p.add_argument("--host", help="gateway host")
    p.add_argument("--port", type=int, help="gateway port")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("schema", help="print the protocol's JSON Schema")
    p.set_defaults(func=cmd_schema)


def _cfg():
    from django.conf import settings

    return settings.WINGMAN


def cmd_token(args: argparse.Namespace) -> int:
    if not args.generate:
        print("usage: wingman gateway token --generate", file=sys.stderr)
        return 2
    print(secrets.token_urlsafe(32))
    return EXIT_OK


def _http_base(url: str | None, host: str | None, port: int | None) -> str:
    if url:
        base = url.rstrip("/")
        for old, new in (("ws://", "http://"), ("wss://", "https://")):
            if base.startswith(old):
                base = new + base[len(old) :]
        return base.removesuffix("/ws")
    cfg = _cfg()
    h = host or cfg.host
    if h in ("0.0.0.0", "::"):  # noqa: S104 - a bind-all address is reached via loopback
        h = "127.0.0.1"
    return f"http://{h}:{port or cfg.port}"


def cmd_health(args: argparse.Namespace) -> int:
    base = _http_base(args.url, args.host, args.port)
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=args.timeout) as resp:  # noqa: S310
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: degraded, with the report
        try:
            body = json.loads(exc.read())
        except ValueError:
            print(f"unhealthy: {base}/health answered {exc.code}")
            return EXIT_FAIL
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"unhealthy: cannot reach {base}/health ({reason})")
        return EXIT_FAIL
    status = body.get("status")
    stats = body.get("stats", {})
    down = "".join(f"; {name} {why}" for name, why in (body.get("down") or {}).items())
    print(
        f"{status}: version {body.get('version')}, uptime {stats.get('uptime', 0) / 1000:.0f}s, "
        f"{stats.get('totalNodes', 0)} connected, {stats.get('messagesProcessed', 0)} messages"
        f"{down}"
    )
    return EXIT_OK if status == "healthy" else EXIT_FAIL


def cmd_schema(args: argparse.Namespace) -> int:
    from gateway.rpc.schema import protocol_schema

    print(json.dumps(protocol_schema(), indent=2))
    return EXIT_OK
