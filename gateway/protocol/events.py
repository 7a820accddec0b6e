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

#: Nodes (OpenClaw's wire names): pairing of a node's command surface, and invokes sent to
#: the node's own connection.
NODE_PAIR_REQUESTED = "node.pair.requested"
NODE_PAIR_RESOLVED = "node.pair.resolved"
NODE_INVOKE_REQUEST = "node.invoke.request"
NODE_INVOKE_CANCEL = "node.invoke.cancel"
DEVICE_PAIR_REQUESTED = "device.pair.requested"
DEVICE_PAIR_RESOLVED = "device.pair.resolved"

EVENTS = (
    CONNECT_CHALLENGE,
    TICK,
    PRESENCE,
    PRESENCE_TICK,
    SHUTDOWN,
    AGENT,
    SESSION_MESSAGE,
    NODE_PAIR_REQUESTED,
    NODE_PAIR_RESOLVED,
    NODE_INVOKE_REQUEST,
    NODE_INVOKE_CANCEL,
    DEVICE_PAIR_REQUESTED,
    DEVICE_PAIR_RESOLVED,
)

# The ``type`` of an ``agent`` event that ends a run: every run ends with exactly one.
AGENT_TERMINAL = ("agent-complete", "agent-error", "agent-cancelled")

# Events a client may not unsubscribe from: it must always learn the server is going away.
MANDATORY_EVENTS = frozenset({SHUTDOWN})
# Events a slow consumer loses first (the next one replaces them; ``seq`` shows the gap).
# Anything else arriving while its buffer is over ``maxBufferedBytes`` is still sent, then
# the socket closes 4008: a run's events (terminal ones above all) are never dropped.
DROPPABLE_EVENTS = frozenset({TICK, PRESENCE, PRESENCE_TICK})


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


Audience = Literal["all", "conn", "topic"]
