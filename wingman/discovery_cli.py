"""``wingman gateway discover``: gateways on the LAN (mDNS) or the tailnet (``--tailscale``).

mDNS browses ``_wingman-gateway._tcp.local.`` for ``--timeout`` ms (default 5000) and lists
every gateway that answered; ``--tailscale`` asks the local tailscaled (or the Tailscale API
with an API key) for online peers with the configured tags and probes each one's /health.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_NONE_FOUND = 3


def add_discover_command(sub: argparse._SubParsersAction) -> None:
    """Register ``gateway discover``."""
    p = sub.add_parser(
        "discover",
        help="find gateways on the LAN (mDNS) or the tailnet (--tailscale)",
        description="List the gateways that announce themselves over mDNS "
        "(_wingman-gateway._tcp.local.) within --timeout, with name, URL and whether they "
        "require auth; or, with --tailscale, the online tailnet peers (filtered by "
        "discovery.tailscale.tags) whose /health answers. Exit 3 when none is found.",
    )
    p.add_argument("--timeout", type=int, default=5000, help="milliseconds (default 5000)")
    p.add_argument("--verbose", "-v", action="store_true", help="show version, TXT, details")
    p.add_argument("--json", action="store_true", help="print the gateways as a JSON list")
    p.add_argument(
        "--tailscale",
        action="store_true",
        help="discover over Tailscale: local tailscaled LocalAPI, else the Tailscale API "
        "(TAILSCALE_API_KEY / discovery.tailscale.apiKey)",
    )
    p.add_argument("--tag", action="append", help="Tailscale tag to require (repeatable)")
    p.set_defaults(func=cmd_discover, needs_django=False)


def cmd_discover(args: argparse.Namespace) -> int:
    """Browse, then print what was found (text or JSON)."""
    if args.timeout <= 0:
        print("wingman: --timeout must be a positive number of milliseconds", file=sys.stderr)
        return 2
    if args.tailscale:
        return _discover_tailscale(args)
    from gateway.discovery.mdns import browse

    found = asyncio.run(browse(args.timeout / 1000))
    if args.json:
        print(json.dumps([g.as_json() for g in found], indent=2))
        return EXIT_OK if found else EXIT_NONE_FOUND
    if not found:
        print(f"No gateway found over mDNS within {args.timeout} ms.")
        return EXIT_NONE_FOUND
    print(f"Found {len(found)} gateway(s):")
    for g in found:
        auth = f"auth required ({g.auth})" if g.auth_required else "no auth"
        print(f"  {g.name}  {g.url}  {auth}")
        if args.verbose:
            print(f"    version {g.version}, host {g.server} {g.host}:{g.port}, ", end="")
            print(f"transport {g.transport}, capabilities {','.join(g.capabilities) or '-'}")
    return EXIT_OK


def _discover_tailscale(args: argparse.Namespace) -> int:
    from gateway.discovery import tailscale
    from wingman.config import load

    cfg = load().discovery.tailscale
    if args.tag:
        cfg = cfg.model_copy(update={"tags": args.tag})
    try:
        result = tailscale.discover(cfg, timeout=args.timeout / 1000)
    except tailscale.TailscaleUnavailable as exc:
        print(f"wingman: {exc}", file=sys.stderr)
        return EXIT_FAIL
    if args.json:
        print(json.dumps([g.as_json() for g in result.gateways], indent=2))
        return EXIT_OK if result.gateways else EXIT_NONE_FOUND
    print(f"Tailscale ({result.source}): {len(result.candidates)} candidate peer(s)")
    if not result.gateways:
        print("No gateway answered on the tailnet.")
        return EXIT_NONE_FOUND
    for g in result.gateways:
        print(f"  {g.name}  {g.url}  MagicDNS {g.magic_url or '-'}  Tailscale IP {g.ip}")
        if args.verbose:
            print(f"    os {g.os}, tags {','.join(g.tags) or '-'}, status {g.status}")
    return EXIT_OK
