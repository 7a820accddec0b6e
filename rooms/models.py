"""Rooms (the seeds' broadcast groups): persisted rooms, their member agents, their history.

Live members (nodes and client connections) are not stored here: they exist only while
connected (``rooms/runtime/roster.py``).
"""

from __future__ import annotations

import uuid

from django.core.validators import RegexValidator
from django.db import models

ROOM_ID = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    "letters, digits, '-', '_' and '.', starting with a letter or digit (max 64)",
)


def _room_id() -> str:
    return uuid.uuid4().hex[:16]


class Strategy(models.TextChoices):
    """How a broadcast reaches the room's agents."""

    PARALLEL = "parallel", "parallel (all at once)"
    SEQUENTIAL = "sequential", "sequential (each sees the answers before it)"


class Room(models.Model):
    """A broadcast room: a message to it reaches every member (agents run on it)."""

    id = models.CharField(primary_key=True, max_length=64, default=_room_id, validators=[ROOM_ID])
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    strategy = models.CharField(max_length=12, choices=Strategy.choices, default=Strategy.PARALLEL)
    metadata = models.JSONField(default=dict, blank=True)
    #: Who created it: ``user:<name>``, ``node:<nodeId>``, ``conn:<connId>``, ``api``, ``cli``.
    created_by = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


class RoomAgent(models.Model):
    """An agent that is a member of a room (``position``: its turn in a sequential room)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="agents")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="rooms")
    position = models.PositiveIntegerField(default=0)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "agent"], name="room_agent_unique")]

    def __str__(self) -> str:
        return f"{self.room_id}: {self.agent_id}"


class SenderKind(models.TextChoices):
    USER = "user", "user (REST, CLI, Control UI)"
    CLIENT = "client", "client connection"
    NODE = "node", "node"
    AGENT = "agent", "agent"


class RoomMessage(models.Model):
    """One entry of a room's history: a broadcast, or an agent's answer to one."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    #: The broadcast this entry belongs to (answers share their broadcast's id).
    broadcast_id = models.CharField(max_length=32, db_index=True)
    sender_kind = models.CharField(max_length=10, choices=SenderKind.choices)
    sender_id = models.CharField(max_length=200, blank=True)
    sender_name = models.CharField(max_length=200, blank=True)
    content = models.TextField(blank=True)
    #: For a broadcast: the JSON payload as sent (a node's message may be any JSON).
    payload = models.JSONField(null=True, blank=True)
    #: For an agent's answer: its run and how it ended (ok | error | cancelled | timeout).
    run_id = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=10, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room", "id"]

    def __str__(self) -> str:
        return f"{self.sender_kind}:{self.sender_id}: {self.content[:40]}"
