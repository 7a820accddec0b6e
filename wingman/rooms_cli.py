"""``wingman rooms list|create|delete|broadcast|history``: rooms through a running gateway.

Every command is one or two ``rooms.*`` calls over the gateway's WebSocket (so events are
published by the gateway that owns the live members). ``broadcast`` joins the room, sends
the message and prints each member agent's answer when it completes (``[agent] text``;
``--json``: every ``agent`` event as one JSON line), then exits 0 when every run
completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from gateway.protocol.events import AGENT_TERMINAL
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

#: Seconds ``broadcast`` waits for every run to end (``--timeout``).
BROADCAST_TIMEOUT = 600.0


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("rooms", help="broadcast rooms of agents (through a running gateway)")
    sub = p.add_subparsers(dest="rooms_command", metavar="COMMAND", required=True)

    q = sub.add_parser("list", help="list rooms")
    add_connection_arguments(q)
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("create", help="create a room")
    q.add_argument("name", help="room name (unique)")
    q.add_argument(
        "--agent",
        dest="agents",
        action="append",
        default=[],
        metavar="AGENT_ID",
        help="member agent (repeat; order = turn order in a sequential room)",
    )
    q.add_argument("--strategy", choices=["parallel", "sequential"], default="parallel")
    q.add_argument("--description", default="")
    add_connection_arguments(q)
    q.set_defaults(func=cmd_create)

    q = sub.add_parser("delete", help="delete a room and its history")
    q.add_argument("room", help="room id")
    add_connection_arguments(q)
    q.set_defaults(func=cmd_delete)

    q = sub.add_parser("broadcast", help="send a message to a room and stream every answer")
    q.add_argument("room", help="room id")
    q.add_argument("message", help="what to say to the room")
    q.add_argument("--strategy", choices=["parallel", "sequential"], help="override the room's")
    q.add_argument(
        "--timeout", type=float, default=BROADCAST_TIMEOUT, help="seconds to wait (default 600)"
    )
    add_connection_arguments(q)
    q.set_defaults(func=cmd_broadcast)

    q = sub.add_parser("history", help="print a room's messages and answers")
    q.add_argument("room", help="room id")
    q.add_argument("--limit", type=int, default=200, help="last N entries (1-1000, default 200)")
    add_connection_arguments(q)
    q.set_defaults(func=cmd_history)


# commands ------------------------------------------------------------------------------------
def _room_line(room: dict[str, Any]) -> str:
    agents = ", ".join(room["agents"]) or "no agents"
    return f"{room['id']}  {room['name']} [{room['strategy']}] — {agents}"


def cmd_list(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        rooms = (await client.call("rooms.list"))["rooms"]
        empty = "No rooms. Create one: wingman rooms create NAME --agent ID --agent ID"
        return print_rows(rooms, as_json=args.json, empty=empty, line=_room_line)

    return with_gateway(args, body)


def cmd_create(args: argparse.Namespace) -> int:
    params = {
        "name": args.name,
        "description": args.description,
        "strategy": args.strategy,
        "agents": args.agents,
    }

    async def body(client) -> int:
        room = await client.call("rooms.create", params)
        if args.json:
            print_json(room)
        else:
            print(f"Created room {room['id']} ({room['name']}, {room['strategy']})")
        return EXIT_OK

    return with_gateway(args, body)


def cmd_delete(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        answer = await client.call("rooms.delete", {"roomId": args.room})
        if args.json:
            print_json(answer)
        else:
            print(f"Deleted room {args.room}")
        return EXIT_OK

    return with_gateway(args, body)


def cmd_history(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        err("--limit must be between 1 and 1000")
        return EXIT_USAGE

    async def body(client) -> int:
        answer = await client.call("rooms.history", {"roomId": args.room, "limit": args.limit})
        if args.json:
            print_json(answer)
            return EXIT_OK
        for message in answer["messages"]:
            print(f"[{_speaker(message)}] {message.get('content') or ''}")
        return EXIT_OK

    return with_gateway(args, body)


def _speaker(message: dict[str, Any]) -> str:
    if message.get("agentId"):
        status = message.get("status")
        return f"{message['agentId']}{f' ({status})' if status not in (None, '', 'ok') else ''}"
    sender = message.get("from") or {}
    return f"{sender.get('kind', 'user')} {sender.get('name') or sender.get('id') or ''}".strip()


def cmd_broadcast(args: argparse.Namespace) -> int:
    async def body(client) -> int:
        return await _broadcast(client, args)

    return with_gateway(args, body)


async def _broadcast(client, args: argparse.Namespace) -> int:
    """Join, broadcast, then print the runs' events until each has its terminal one (events
    that arrive before the reply wait in the client's queue)."""
    await client.call("rooms.join", {"roomId": args.room})
    params = {"roomId": args.room, "message": args.message}
    if args.strategy:
        params["strategy"] = args.strategy
    answer = await client.call("rooms.broadcast", params)
    runs = set(answer["runIds"])
    if not args.json:
        print(f"Broadcast to {args.room}: {len(runs)} agent run(s), {answer['strategy']}")
    ended: dict[str, dict[str, Any]] = {}

    async def follow() -> None:
        async for frame in client.events():
            payload = frame.get("payload") or {}
            if frame.get("event") != "agent" or payload.get("runId") not in runs:
                continue
            _print_step(payload, args.json)
            if payload.get("type") in AGENT_TERMINAL:
                ended[payload["runId"]] = payload
                if runs <= set(ended):
                    return

    if runs:
        try:
            await asyncio.wait_for(follow(), args.timeout)
        except TimeoutError:
            err(f"{len(runs) - len(ended)} run(s) still going after {args.timeout:g}s")
            return EXIT_FAIL
    ok = all(step.get("type") == "agent-complete" for step in ended.values())
    return EXIT_OK if ok else EXIT_FAIL


def _print_step(step: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(step, ensure_ascii=False), flush=True)
        return
    agent, kind = step.get("agentId"), step.get("type")
    if kind == "agent-complete":
        text = ((step.get("result") or {}).get("text") or "").strip()
        print(f"[{agent}] {text}", flush=True)
    elif kind == "agent-error":
        print(f"[{agent}] error: {step.get('error')}", file=sys.stderr, flush=True)
    elif kind == "agent-cancelled":
        print(f"[{agent}] cancelled", file=sys.stderr, flush=True)
