"""Routines (an agent prompt on a schedule) and the record of each time one came due."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class ScheduleKind(models.TextChoices):
    CRON = "cron", "CRON expression"
    EVERY = "every", "fixed interval"
    AT = "at", "one time"


class TargetKind(models.TextChoices):
    #: ``agent:<agentId>:routine:<routineId>``, named ``Routine: <name>`` (the default).
    ROUTINE = "routine", "routine thread"
    #: The agent's main session (``agent:<agentId>:main``).
    MAIN = "main", "agent's main session"
    #: An existing session, by key (``target_session_key``).
    SESSION = "session", "existing session"


class RoutineStatus(models.TextChoices):
    """A routine's last outcome (``last_status``) and a fire's outcome (``RoutineRun``)."""

    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    #: Not run: the previous run was still going, or the start was too late (``reason``).
    SKIPPED = "skipped"


def _routine_id() -> str:
    return uuid.uuid4().hex


class Routine(models.Model):
    """An agent prompt run on a CRON / interval / one-time schedule, by Celery Beat."""

    id = models.CharField(primary_key=True, max_length=64, default=_routine_id)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="routines")
    schedule_kind = models.CharField(max_length=5, choices=ScheduleKind.choices)
    #: The normalised 5-field CRON expression (kind ``cron``; ``@daily`` etc. kept as typed).
    cron = models.CharField(max_length=200, blank=True)
    #: Seconds between runs (kind ``every``), counted from ``anchor_at``.
    every_seconds = models.PositiveIntegerField(null=True, blank=True)
    #: The one time it runs (kind ``at``).
    at = models.DateTimeField(null=True, blank=True)
    #: Kind ``at``: delete the routine once its run ended.
    delete_after_run = models.BooleanField(default=False)
    #: IANA zone the CRON expression is read in.
    timezone = models.CharField(max_length=64, default="UTC")
    #: Start of an interval schedule's grid (set when the schedule is set).
    anchor_at = models.DateTimeField(null=True, blank=True)
    prompt = models.TextField()
    enabled = models.BooleanField(default=True)
    target_kind = models.CharField(
        max_length=10, choices=TargetKind.choices, default=TargetKind.ROUTINE
    )
    target_session_key = models.CharField(max_length=500, blank=True)
    #: Bumped by every change of the configuration (``expected_revision`` checks it).
    revision = models.PositiveIntegerField(default=1)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.CharField(max_length=10, choices=RoutineStatus.choices, blank=True)
    last_error = models.TextField(blank=True)
    last_run_id = models.CharField(max_length=32, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    consecutive_errors = models.PositiveIntegerField(default=0)
    #: Why it was disabled by the gateway (e.g. too many consecutive failures); empty else.
    disabled_reason = models.CharField(max_length=500, blank=True)
    #: The django-celery-beat row that fires it (kept in step by ``services/beat.py`` only).
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="routine",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name or self.id


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "on schedule"
    MANUAL = "manual", "run now"


class RoutineRun(models.Model):
    """One time a routine came due or was run by hand: the agent Run it started (source
    ``routine``), or why it did not run. ``(routine, scheduled_at)`` is unique, so one
    scheduled time never runs twice, whatever the beats and workers do."""

    routine = models.ForeignKey(Routine, on_delete=models.CASCADE, related_name="runs")
    #: The schedule's time this is for (UTC); None for a manual run.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    run = models.OneToOneField(
        "agents.Run",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="routine_run",
    )
    session_key = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=RoutineStatus.choices, default=RoutineStatus.RUNNING
    )
    #: For a skip: why (``overlap``, ``too-late``, ``disabled``); for an error: the message.
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["routine", "scheduled_at"],
                condition=Q(scheduled_at__isnull=False),
                name="routine_run_once_per_time",
            )
        ]
        indexes = [models.Index(fields=["routine", "status"], name="routine_run_status")]

    def __str__(self) -> str:
        return f"{self.routine_id} @ {self.scheduled_at or 'manual'}: {self.status}"
