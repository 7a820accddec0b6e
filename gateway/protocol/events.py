"""Event names and payloads (design/protocol.md, "Events").

Add a new event here, in ``EVENTS`` (which feeds ``hello-ok.features.events``), and give it
a publisher in ``gateway/delivery/publish.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.protocol.base import Frame
from gateway.protocol.handshake import PresenceEntry, StateVersion

CONNECT_CHALLENGE = "connect.challenge"
TICK = "tick"
PRESENCE = "presence"
PRESENCE_TICK = "presence.tick"
SHUTDOWN = "shutdown"
AGENT = "agent"
SESSION_MESSAGE = "session.message"
#: A webhook accepted a delivery and started a run (webhooks/services/deliveries.py).
WEBHOOK = "webhook"
#: A routine was added, updated, removed, or one of its runs started, finished or was skipped.
ROUTINE = "routine"
#: The same news for OpenClaw clients (its CLI's shape, gateway/protocol/cron.py).
CRON = "cron"

EVENTS = (
    CONNECT_CHALLENGE,
    TICK,
    PRESENCE,
    PRESENCE_TICK,
    SHUTDOWN,
    AGENT,
    SESSION_MESSAGE,
    WEBHOOK,
    ROUTINE,
    CRON,
)

# The ``type`` of an ``agent`` event that ends a run: every run ends with exactly one.
AGENT_TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")

# Events a client may not unsubscribe from: it must always learn the server is going away.
MANDATORY_EVENTS = frozenset({SHUTDOWN})
# Events a slow consumer loses first (the next one replaces them; ``seq`` shows the gap).
# Anything else arriving while its buffer is over ``maxBufferedBytes`` is still sent, then
# the socket closes 4008: a run's events (terminal ones above all) are never dropped.
DROPPABLE_EVENTS = frozenset({TICK, PRESENCE, PRESENCE_TICK, CRON})


class ChallengePayload(Frame):
    nonce: str = Field(min_length=1)
    ts: int


class TickPayload(Frame):
    ts: int


class PresencePayload(Frame):
    """A presence delta: the entries that joined (``reason: connect``) or left since the last.

    Changes that arrive within ``presenceCoalesceMs`` of each other share one event so a
    connect storm costs O(n) frames, not O(n^2).
    """

    entries: list[PresenceEntry]
    state_version: StateVersion = Field(alias="stateVersion")


class PresenceTickPayload(Frame):
    count: int
    presence: list[PresenceEntry]
    ts: int


class ShutdownPayload(Frame):
    reason: str
    restart_expected_ms: int | None = Field(default=None, alias="restartExpectedMs")


class WebhookPayload(Frame):
    """``webhook``: a delivery was accepted (its run streams to the session's topic)."""

    id: str = Field(min_length=1, description="the delivery id (the sender's webhook-id)")
    webhook_id: str = Field(alias="webhookId")
    run_id: str = Field(alias="runId")
    session_key: str = Field(alias="sessionKey")
    received_at: int = Field(alias="receivedAt", description="ms since the epoch")


Audience = Literal["all", "conn", "topic"]


RoutineAction = Literal["added", "updated", "removed", "started", "finished", "skipped"]


class RoutinePayload(Frame):
    """``routine``: what happened to a routine (times in ms since the epoch)."""

    action: RoutineAction
    routine_id: str = Field(alias="routineId")
    name: str | None = None
    agent_id: str | None = Field(default=None, alias="agentId")
    enabled: bool | None = None
    #: started: ``running``; finished: ok | error | cancelled | timeout; skipped: ``skipped``.
    status: str | None = None
    run_id: str | None = Field(default=None, alias="runId")
    session_key: str | None = Field(default=None, alias="sessionKey")
    scheduled_at_ms: int | None = Field(default=None, alias="scheduledAtMs")
    next_run_at_ms: int | None = Field(default=None, alias="nextRunAtMs")
    duration_ms: int | None = Field(default=None, alias="durationMs")
    #: finished with an error: the message; skipped: why (overlap, too-late).
    error: str | None = None
    reason: str | None = None
    ts: int
