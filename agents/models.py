"""Agents, routing bindings, durable sessions, their messages and the runs that fill them."""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

AGENT_ID = RegexValidator(
    r"^[a-z0-9][a-z0-9_-]{0,63}$",
    "lowercase letters, digits, '-' and '_', starting with a letter or digit (max 64)",
)


class Agent(models.Model):
    """A fully scoped brain: its own model, prompt, tools, workspace and sessions."""

    id = models.CharField(primary_key=True, max_length=64, validators=[AGENT_ID])
    name = models.CharField(max_length=200, blank=True)
    model = models.CharField(
        max_length=200, blank=True, help_text='"provider:model"; empty = the gateway default'
    )
    system_prompt = models.TextField(blank=True)
    tools = models.JSONField(default=list, blank=True, help_text="names of allowed tools")
    workspace = models.CharField(max_length=1000, blank=True)
    agent_dir = models.CharField(max_length=1000, blank=True)
    is_default = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_agent"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.id


class PeerKind(models.TextChoices):
    DM = "dm", "direct message"
    GROUP = "group", "group"
    CHANNEL = "channel", "channel"


class Binding(models.Model):
    """Maps inbound message metadata to an agent (most specific match wins)."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="bindings")
    channel = models.CharField(max_length=100)
    account_id = models.CharField(max_length=200, blank=True)
    guild_id = models.CharField(max_length=200, blank=True)
    team_id = models.CharField(max_length=200, blank=True)
    peer_kind = models.CharField(max_length=10, choices=PeerKind.choices, blank=True)
    peer_id = models.CharField(max_length=200, blank=True)
    order = models.PositiveIntegerField(default=0, help_text="ties break by order, then age")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return f"{self.channel} → {self.agent_id}"


class Session(models.Model):
    """A durable conversation owned by one agent, addressed by its session key."""

    key = models.CharField(max_length=500, unique=True)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="sessions")
    name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=100, blank=True)
    account_id = models.CharField(max_length=200, blank=True)
    peer_kind = models.CharField(max_length=10, choices=PeerKind.choices, blank=True)
    peer_id = models.CharField(max_length=200, blank=True)
    thread_id = models.CharField(max_length=200, blank=True)
    working_folder = models.CharField(max_length=1000, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    last_preview = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name or self.key


class RunSource(models.TextChoices):
    WS = "ws", "WebSocket"
    CLI = "cli", "CLI (local)"
    API = "api", "REST API"
    ROUTINE = "routine", "routine"
    WEBHOOK = "webhook", "webhook"
    ROOM = "room", "room"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


TERMINAL_STATUSES = (RunStatus.OK, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.TIMEOUT)


def _run_id() -> str:
    return uuid.uuid4().hex


class Run(models.Model):
    """One agent turn: prompt in, streamed answer out, exactly one final status."""

    id = models.CharField(primary_key=True, max_length=32, default=_run_id, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="runs")
    source = models.CharField(max_length=10, choices=RunSource.choices)
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    prompt = models.TextField()
    result = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # NULL (not "") for "no key": the unique constraint must not treat keyless runs as equal.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    #: What the caller asked for, so any process can execute the run from its id alone.
    timeout = models.FloatField(null=True, blank=True, help_text="seconds; empty: the default")
    extra_system_prompt = models.TextField(blank=True)
    #: Where it executes: this gateway's event loop ("local") or a Celery worker ("celery").
    executor = models.CharField(max_length=10, default="local")
    #: The executing process: its seat id (control messages reach it), host and pid; empty
    #: while a Celery run waits for a worker to claim it.
    owner = models.CharField(max_length=32, blank=True, help_text="process executing it")
    owner_host = models.CharField(max_length=255, blank=True)
    owner_pid = models.PositiveIntegerField(null=True, blank=True)
    #: Refreshed by the executing process; a run whose owner stopped refreshing is lost.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    #: The protocol error code of a failed run (AGENT_ERROR, AGENT_TIMEOUT, EXECUTOR_LOST).
    error_code = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "status"], name="run_session_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="unique_idempotency_key_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class Message(models.Model):
    """One message of a session, in order (``position``)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=MessageRole.choices)
    content = models.TextField()
    run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    position = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="message_position")
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
