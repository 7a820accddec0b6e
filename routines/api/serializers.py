"""Shapes of the routines REST API. Input is validated by the same pydantic models as the
WebSocket ``routines.*`` methods (``gateway/protocol/routines.py``), output is
``routines.wire``'s view: the two APIs cannot drift. The serializer fields here declare the
shapes for the OpenAPI schema (tests/routines/test_api.py keeps them in step)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.api.inputs import protocol_input
from gateway.protocol.routines import RoutineCreateParams, RoutineFields
from routines import wire

TARGETS = ["routine", "main", "session"]
KINDS = ["cron", "every", "at"]
OUTCOMES = ["running", "ok", "error", "cancelled", "timeout", "skipped"]


class RoutinePatchInput(serializers.Serializer):
    """PATCH: the fields to change. A schedule is one of ``cron``, ``every``, ``at``."""

    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    agentId = serializers.CharField(required=False, max_length=64)
    scheduleKind = serializers.ChoiceField(
        choices=KINDS, required=False, help_text="implied by cron, every or at"
    )
    cron = serializers.CharField(
        required=False, help_text='5-field CRON or @hourly/@daily/...: "0 9 * * 1-5"'
    )
    every = serializers.CharField(
        required=False, help_text='interval: seconds, or "15m", "2h", "every 15 minutes"'
    )
    at = serializers.CharField(required=False, help_text='one time: "2026-12-24T18:00+01:00"')
    timezone = serializers.CharField(
        required=False, help_text="IANA zone (default: the gateway's WINGMAN_TIMEZONE, UTC)"
    )
    prompt = serializers.CharField(required=False, trim_whitespace=False)
    enabled = serializers.BooleanField(required=False)
    target = serializers.ChoiceField(
        choices=TARGETS, required=False, help_text="routine (its own thread) | main | session"
    )
    sessionKey = serializers.CharField(
        required=False, help_text="target=session: that session (seed 001: sessionId)"
    )
    deleteAfterRun = serializers.BooleanField(required=False, help_text="one-time routines")

    def to_internal_value(self, data) -> dict[str, Any]:
        """Service keyword arguments of the fields given."""
        return protocol_input(RoutineFields, data).changes()


class RoutineInput(RoutinePatchInput):
    """POST and PUT: name, agentId, a schedule and prompt are required (PUT resets the
    fields it leaves out)."""

    name = serializers.CharField(max_length=200)
    agentId = serializers.CharField(max_length=64)
    prompt = serializers.CharField(trim_whitespace=False)
    id = serializers.CharField(required=False, max_length=64, help_text="POST only; optional")

    def to_internal_value(self, data) -> dict[str, Any]:
        return protocol_input(RoutineCreateParams, data).changes()


class RoutineOutput(serializers.Serializer):
    """``routines.wire.routine_view`` (times in ms since the epoch)."""

    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    agentId = serializers.CharField()
    scheduleKind = serializers.ChoiceField(choices=KINDS)
    schedule = serializers.CharField(help_text="the schedule as text")
    cron = serializers.CharField(allow_null=True)
    everySeconds = serializers.IntegerField(allow_null=True)
    at = serializers.CharField(allow_null=True)
    timezone = serializers.CharField()
    prompt = serializers.CharField()
    enabled = serializers.BooleanField()
    target = serializers.ChoiceField(choices=TARGETS)
    sessionKey = serializers.CharField(help_text="the session its runs go to")
    deleteAfterRun = serializers.BooleanField()
    createdAt = serializers.IntegerField()
    updatedAt = serializers.IntegerField()
    nextRunAt = serializers.IntegerField(allow_null=True)
    nextRuns = serializers.ListField(child=serializers.IntegerField(), help_text="next 5")
    lastRunAt = serializers.IntegerField(allow_null=True)
    lastStatus = serializers.CharField(allow_null=True, help_text=" | ".join(OUTCOMES))
    lastError = serializers.CharField(allow_null=True)
    lastRunId = serializers.CharField(allow_null=True)
    lastDurationMs = serializers.IntegerField(allow_null=True)
    runningSince = serializers.IntegerField(allow_null=True)
    consecutiveErrors = serializers.IntegerField()
    disabledReason = serializers.CharField(allow_null=True)
    configRevision = serializers.CharField(help_text="changes with every edit")

    def to_representation(self, instance):
        return wire.routine_view(instance)


class RoutineRunOutput(serializers.Serializer):
    """``routines.wire.run_view``: one time the routine came due or was run by hand."""

    id = serializers.IntegerField()
    routineId = serializers.CharField()
    runId = serializers.CharField(allow_null=True, help_text="null when skipped")
    trigger = serializers.ChoiceField(choices=["schedule", "manual"])
    sessionKey = serializers.CharField()
    status = serializers.CharField(help_text=" | ".join(OUTCOMES))
    reason = serializers.CharField(allow_null=True, help_text="why skipped, or the error")
    scheduledAt = serializers.IntegerField(allow_null=True)
    startedAt = serializers.IntegerField(allow_null=True)
    endedAt = serializers.IntegerField(allow_null=True)
    durationMs = serializers.IntegerField(allow_null=True)
    summary = serializers.CharField(allow_null=True, help_text="the answer's beginning")

    def to_representation(self, instance):
        return wire.run_view(instance)


class RoutineRunNowOutput(serializers.Serializer):
    routineId = serializers.CharField()
    runId = serializers.CharField(allow_null=True)
    sessionKey = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="accepted | skipped")
    reason = serializers.CharField(allow_null=True, help_text="skipped: overlap, ...")


class RoutineFilter(serializers.Serializer):
    agent = serializers.CharField(required=False, help_text="agent id")
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
