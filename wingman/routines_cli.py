"""``wingman routines``: list, add, edit, remove, run, enable, disable, runs, import, export.

Works on the state dir's database through the routine services (like ``wingman agents``);
a running gateway picks changes up within its scheduler's sync interval. ``run`` starts the
routine through the run service (on the embedded default it executes in this process, as
``wingman agent --local`` does) and waits for it to end.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
#: Service field → the flag that sets it (errors name the flag).
FLAGS = {
    "name": "--name",
    "description": "--description",
    "agent_id": "--agent",
    "schedule_kind": "--cron/--every/--at",
    "cron": "--cron",
    "every": "--every",
    "at": "--at",
    "timezone": "--tz",
    "prompt": "--prompt",
    "target_kind": "--target",
    "target_session_key": "--session",
    "delete_after_run": "--delete-after-run",
    "id": "--id",
}


def _routine_flags(p: argparse.ArgumentParser, *, create: bool) -> None:
    p.add_argument("--name", required=create, help="a name for people")
    p.add_argument("--agent", dest="agent_id", required=create, help="agent id")
    p.add_argument("--prompt", required=create, help="what the agent is asked each time")
    group = p.add_mutually_exclusive_group(required=create)
    group.add_argument("--cron", help='5-field CRON or @daily/@hourly/...: "0 9 * * 1-5"')
    group.add_argument("--every", help='fixed interval: "15m", "2h", "every 30 minutes"')
    group.add_argument("--at", help='one time: "2026-12-24T18:00+01:00"')
    p.add_argument("--tz", dest="timezone", help="IANA time zone (default: WINGMAN_TIMEZONE/UTC)")
    p.add_argument(
        "--target",
        dest="target_kind",
        choices=["routine", "main", "session"],
        help="where runs go: routine (its own thread, default), main, session (--session)",
    )
    p.add_argument("--session", dest="target_session_key", help="session key for --target session")
    p.add_argument("--description", help="a longer note")
    p.add_argument(
        "--delete-after-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one-time (--at) routines: delete it once it ran",
    )
    p.add_argument("--json", action="store_true", help="print the routine as JSON")


def add_commands(top: argparse._SubParsersAction) -> None:
    p = top.add_parser("routines", help="manage routines (agent prompts on a schedule)")
    sub = p.add_subparsers(dest="routines_command", metavar="COMMAND", required=True)
    q = sub.add_parser("list", help="list routines with their next and last run")
    q.add_argument("--agent", dest="agent_id", help="only this agent's")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)
    q = sub.add_parser("add", help="create a routine")
    _routine_flags(q, create=True)
    q.add_argument("--id", help="its id (default: generated)")
    q.add_argument("--disabled", action="store_true", help="create it disabled")
    q.set_defaults(func=cmd_add)
    q = sub.add_parser("edit", help="change some fields of a routine")
    q.add_argument("id", help="routine id")
    _routine_flags(q, create=False)
    q.set_defaults(func=cmd_edit)
    for name, helptext, func in (
        ("remove", "delete a routine (its thread stays)", cmd_remove),
        ("enable", "enable a routine", cmd_enable),
        ("disable", "disable a routine", cmd_disable),
        ("run", "run a routine now and wait for its answer", cmd_run),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("id", help="routine id")
        q.add_argument("--json", action="store_true", help="print JSON")
        q.set_defaults(func=func)
    q = sub.add_parser("runs", help="a routine's runs and skipped times, newest first")
    q.add_argument("id", help="routine id")
    q.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_runs)
    q = sub.add_parser("import", help="import routines.json (seed 001 shape)")
    q.add_argument("file", nargs="?", help="file (default: routines.json in the state dir)")
    q.add_argument(
        "--keep-existing", action="store_true", help="leave routines that exist unchanged"
    )
    q.set_defaults(func=cmd_import)
    q = sub.add_parser("export", help="write every routine as routines.json")
    q.add_argument("file", nargs="?", help='file (default: stdout; "state" = the state dir)')
    q.set_defaults(func=cmd_export)


# helpers ------------------------------------------------------------------------------------
def _setup() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"wingman: {message}", file=sys.stderr)
    return code


def _call(func, *args, **kwargs) -> tuple[Any, int | None]:
    """``func(...)`` with the services' errors turned into a message and an exit code."""
    from django.core.exceptions import ValidationError

    from gateway.protocol.errors import ErrorCode, GatewayError

    try:
        return func(*args, **kwargs), None
    except ValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"routine": exc.messages}
        lines = [f"{FLAGS.get(f, f)}: {' '.join(m)}" for f, m in detail.items()]
        return None, _fail("invalid routine: " + "; ".join(lines), EXIT_USAGE)
    except GatewayError as exc:
        code = EXIT_USAGE if exc.code == ErrorCode.INVALID_REQUEST else EXIT_FAIL
        return None, _fail(exc.message, code)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    names = ("name", "description", "agent_id", "prompt", "cron", "every", "at", "timezone")
    names += ("target_kind", "target_session_key", "delete_after_run")
    fields = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
    for kind in ("cron", "every", "at"):
        if kind in fields:
            fields["schedule_kind"] = kind
    return fields


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_routine(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(view, indent=2))
        return
    state = "enabled" if view["enabled"] else "disabled"
    if view["disabledReason"]:
        state += f" ({view['disabledReason']})"
    print(f"{view['id']}  {view['name']}  [{state}]")
    print(f"  agent {view['agentId']} → {view['sessionKey']}")
    print(f"  schedule {view['schedule']} ({view['timezone']})")
    print(
        "  next " + ", ".join(_when(ms) for ms in view["nextRuns"])
        if view["nextRuns"]
        else "  next -"
    )
    last = view["lastStatus"] or "never run"
    print(
        f"  last {last} {_when(view['lastRunAt'])}"
        + (f": {view['lastError']}" if view["lastError"] else "")
    )


# commands -----------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from routines import wire

    _setup()
    views = wire.routine_views(agent_id=args.agent_id)
    if args.json:
        print(json.dumps(views, indent=2))
        return EXIT_OK
    if not views:
        print("no routines (add one: wingman routines add --help)")
    for view in views:
        state = "on " if view["enabled"] else "off"
        print(
            f"{view['id']}  {state}  {view['name']}  {view['schedule']} ({view['timezone']})"
            f"  next {_when(view['nextRunAt'])}  last {view['lastStatus'] or '-'}"
        )
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from routines import wire
    from routines.services.routines import routine_create

    _setup()
    fields = _fields(args) | {"enabled": not args.disabled}
    if args.id:
        fields["routine_id"] = args.id
    routine, code = _call(routine_create, **fields)
    if code is not None:
        return code
    _print_routine(wire.routine_view(routine), args.json)
    return EXIT_OK


def cmd_edit(args: argparse.Namespace) -> int:
    from routines import wire
    from routines.services.routines import routine_update

    _setup()
    fields = _fields(args)
    if not fields:
        return _fail("nothing to change (see wingman routines edit --help)", EXIT_USAGE)
    routine, code = _call(routine_update, routine_id=args.id, **fields)
    if code is not None:
        return code
    _print_routine(wire.routine_view(routine), args.json)
    return EXIT_OK


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    from routines import wire
    from routines.services.routines import routine_set_enabled

    _setup()
    routine, code = _call(routine_set_enabled, routine_id=args.id, enabled=enabled)
    if code is not None:
        return code
    _print_routine(wire.routine_view(routine), args.json)
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, True)


def cmd_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, False)


def cmd_remove(args: argparse.Namespace) -> int:
    from routines.services.routines import routine_delete

    _setup()
    _, code = _call(routine_delete, routine_id=args.id)
    if code is not None:
        return code
    print(json.dumps({"id": args.id, "deleted": True}) if args.json else f"removed {args.id}")
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from routines import wire

    _setup()
    result, code = _call(wire.run_views, args.id, limit=max(1, args.limit))
    if code is not None:
        return code
    runs, total = result
    if args.json:
        print(json.dumps({"routineId": args.id, "runs": runs, "total": total}, indent=2))
        return EXIT_OK
    for run in runs:
        when = _when(run["scheduledAt"] or run["startedAt"])
        detail = f"  {run['reason']}" if run["reason"] else ""
        print(f"{when}  {run['trigger']:8}  {run['status']:9}  {run['runId'] or '-'}{detail}")
    print(f"{total} in all")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    _setup()
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from asgiref.sync import sync_to_async

    from agents.services import runs
    from routines import wire
    from routines.services import fire, settle

    outcome = await fire.routine_run_now(routine_id=args.id)
    if not outcome.ran:
        reason = f"no routine {args.id!r}" if outcome.reason == "not-found" else outcome.reason
        return _fail(f"routine {args.id} not run: {reason}")
    run = await runs.run_wait(outcome.run_id, 86_400)
    # Record the end now: this process exits before its follower task would.
    await sync_to_async(settle.settle_record)(outcome.routine_run_id)
    result = {
        "routineId": args.id,
        "runId": outcome.run_id,
        "sessionKey": outcome.session_key,
        "status": run.status if run else "running",
        "answer": run.result if run else "",
        "error": (run.error or None) if run else None,
    }
    if args.json:
        routine = await sync_to_async(wire.routine_view_of)(args.id)
        print(json.dumps(result | {"routine": routine}, indent=2))
    else:
        print(result["answer"] or f"({result['status']}: {result['error'] or ''})")
    return EXIT_OK if result["status"] == "ok" else EXIT_FAIL


def cmd_import(args: argparse.Namespace) -> int:
    from routines.services.transfer import RoutinesFileError, default_path, routines_import

    path = Path(args.file) if args.file else default_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return _fail(f"no such file: {path}", EXIT_USAGE)
    except json.JSONDecodeError as exc:
        return _fail(f"{path}: not valid JSON ({exc})", EXIT_USAGE)
    _setup()
    try:
        result = routines_import(data=data, update_existing=not args.keep_existing)
    except RoutinesFileError as exc:
        return _fail(f"{path}: {exc} (nothing was imported)", EXIT_USAGE)
    print(f"Imported from {path}: {result}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from routines.services.transfer import routines_export, routines_export_file

    _setup()
    if args.file is None:
        print(json.dumps(routines_export(), indent=2))
        return EXIT_OK
    path = routines_export_file(None if args.file == "state" else Path(args.file))
    print(f"Exported to {path}", file=sys.stderr)
    return EXIT_OK
