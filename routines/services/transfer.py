"""``routines.json`` (seed 001: ``[{id, name, agentId, cron, prompt, sessionId?, enabled,
createdAt, lastRunAt?}]``, in the state dir): imported on gateway start like the agents'
config, and exported/imported by ``wingman routines export|import``. Routines that are not
CRON carry ``every`` or ``at`` instead of ``cron``; ``timezone``, ``description`` and
``deleteAfterRun`` are optional. A file is checked whole before anything is saved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Session
from routines.models import Routine, ScheduleKind, TargetKind
from routines.services.routines import routine_create, routine_update

FILE_NAME = "routines.json"
API_NAMES = {
    "agent_id": "agentId",
    "target_session_key": "sessionId",
    "delete_after_run": "deleteAfterRun",
}


class RoutinesFileError(ValueError):
    """A routines file that cannot be imported: where (``routines[2].cron``) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


def default_path() -> Path:
    return Path(settings.STATE_DIR) / FILE_NAME


def _entries(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "routines" in data:
        data = data["routines"]
    if not isinstance(data, list):
        raise RoutinesFileError("routines", "must be a list of routines")
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise RoutinesFileError(f"routines[{index}]", "must be an object")
        for key in ("id", "name", "agentId", "prompt"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise RoutinesFileError(
                    f"routines[{index}].{key}", "a non-empty string is required"
                )
    ids = [e["id"] for e in data]
    for index, rid in enumerate(ids):
        if ids.index(rid) != index:
            raise RoutinesFileError(f"routines[{index}].id", f"{rid!r} is listed twice")
    return data


def _fields(entry: dict[str, Any]) -> dict[str, Any]:
    """The service's keyword arguments for one entry."""
    kind = ScheduleKind.CRON
    if entry.get("every") is not None and not entry.get("cron"):
        kind = ScheduleKind.EVERY
    elif entry.get("at") is not None and not entry.get("cron"):
        kind = ScheduleKind.AT
    session = entry.get("sessionId") or ""
    return {
        "name": entry["name"],
        "agent_id": entry["agentId"],
        "prompt": entry["prompt"],
        "schedule_kind": kind,
        "cron": entry.get("cron") if kind == ScheduleKind.CRON else None,
        "every": entry.get("every"),
        "at": entry.get("at"),
        "timezone": entry.get("timezone") or None,
        "enabled": entry.get("enabled", True) is not False,
        "target_kind": TargetKind.SESSION if session else TargetKind.ROUTINE,
        "target_session_key": session,
        "delete_after_run": bool(entry.get("deleteAfterRun", False)),
        "description": entry.get("description") or "",
    }


def _stamp(routine: Routine, entry: dict[str, Any], index: int) -> None:
    """Keep the file's ``createdAt`` and ``lastRunAt``."""
    stamps = {}
    for key, field in (("createdAt", "created_at"), ("lastRunAt", "last_run_at")):
        value = entry.get(key)
        if value in (None, ""):
            continue
        try:
            stamps[field] = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise RoutinesFileError(
                f"routines[{index}].{key}", "expected an ISO 8601 time"
            ) from None
    if stamps:
        Routine.objects.filter(pk=routine.pk).update(**stamps)


COMPARED = ("name", "agentId", "cron", "every", "at", "prompt", "sessionId", "enabled")
COMPARED += ("timezone", "description", "deleteAfterRun")


def _differs(routine: Routine, entry: dict[str, Any]) -> bool:
    current = export_entry(routine)
    return any(current.get(key) != entry[key] for key in COMPARED if key in entry)


def routines_import(
    *, data: Any, update_existing: bool = True, missing_sessions_ok: bool = False
) -> ImportResult:
    """Import routines (the parsed file); ``update_existing``: also change routines that
    exist (else they are left as they are). All or nothing: the first bad entry raises
    ``RoutinesFileError`` naming it and the field, and nothing is saved."""
    entries = _entries(data)
    created = updated = unchanged = 0
    with transaction.atomic():
        for index, entry in enumerate(entries):
            fields = _fields(entry)
            key = fields["target_session_key"]
            if missing_sessions_ok and key and not Session.objects.filter(key=key).exists():
                fields["target_kind"], fields["target_session_key"] = TargetKind.ROUTINE, ""
            existing = Routine.objects.filter(pk=entry["id"]).first()
            try:
                if existing is None:
                    routine = routine_create(routine_id=entry["id"], **fields)
                    _stamp(routine, entry, index)
                    created += 1
                elif not update_existing or not _differs(existing, entry):
                    unchanged += 1
                else:
                    routine_update(routine_id=existing.pk, **fields)
                    updated += 1
            except ValidationError as exc:
                field, messages = next(iter(exc.message_dict.items()))
                where = f"routines[{index}].{API_NAMES.get(field, field)}"
                raise RoutinesFileError(where, "; ".join(messages)) from None
    return ImportResult(created, updated, unchanged)


def export_entry(routine: Routine) -> dict[str, Any]:
    """One routine in the file's shape."""
    entry: dict[str, Any] = {"id": routine.pk, "name": routine.name, "agentId": routine.agent_id}
    if routine.schedule_kind == ScheduleKind.CRON:
        entry["cron"] = routine.cron
    elif routine.schedule_kind == ScheduleKind.EVERY:
        entry["every"] = routine.every_seconds
    else:
        entry["at"] = routine.at.isoformat() if routine.at else None
        entry["deleteAfterRun"] = routine.delete_after_run
    entry["prompt"] = routine.prompt
    if routine.target_kind == TargetKind.SESSION:
        entry["sessionId"] = routine.target_session_key
    entry["enabled"] = routine.enabled
    entry["timezone"] = routine.timezone
    if routine.description:
        entry["description"] = routine.description
    entry["createdAt"] = routine.created_at.isoformat()
    if routine.last_run_at:
        entry["lastRunAt"] = routine.last_run_at.isoformat()
    return entry


def routines_export() -> list[dict[str, Any]]:
    """Every routine in the file's shape (``json.dumps`` it, or :func:`routines_export_file`)."""
    return [export_entry(r) for r in Routine.objects.order_by("created_at", "id")]


def routines_export_file(path: Path | None = None) -> Path:
    """Write ``routines.json`` (default: in the state dir); returns the path."""
    path = path or default_path()
    path.write_text(json.dumps(routines_export(), indent=2) + "\n", encoding="utf-8")
    return path


def bootstrap() -> str | None:
    """On gateway start: import ``routines.json`` from the state dir if there is one, without
    changing routines that exist. Returns a line for the log (None: no file)."""
    path = default_path()
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RoutinesFileError(str(path), f"not valid JSON ({exc})") from None
    result = routines_import(data=data, update_existing=False, missing_sessions_ok=True)
    return f"routines: {result} from {path}"
