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
#: A message in a room: a broadcast (user, client or node) or an agent's answer to one.
ROOM_MESSAGE = "room.message"
#: A live member (node or client connection) joined or left a room.
ROOM_MEMBER = "room.member"
#: A direct message to one node (wingman-node ``direct``; canonical ``send``).
NODE_MESSAGE = "node.message"
#: The gateway's heartbeat to one node that has been silent (wingman-node ``ping``).
NODE_PING = "node.ping"

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
    WEBHOOK,
    ROUTINE,
    CRON,
    ROOM_MESSAGE,
    ROOM_MEMBER,
    NODE_MESSAGE,
    NODE_PING,
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
DROPPABLE_EVENTS = frozenset({TICK, PRESENCE, PRESENCE_TICK, CRON})
# Events that are requests to the connection they are sent to (it answers them): written at
# once like a reply, never held in the write-coalescing window (gateway/ws/writer.py).
REQUEST_EVENTS = frozenset({NODE_INVOKE_REQUEST, NODE_INVOKE_CANCEL})


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


class RoomSender(Frame):
    """Who said it: ``kind`` user | client | node | agent, their id and name."""

    kind: str
    id: str
    name: str | None = None


class RoomMessagePayload(Frame):
    """``room.message``: a broadcast (``payload``: a node's message as sent, any JSON) or an
    agent's answer (``runId``, ``agentId``, ``status``). Sent to the room's members and
    subscribers except the connection it came from; an answer never starts a run."""

    room_id: str = Field(alias="roomId")
    broadcast_id: str = Field(alias="broadcastId")
    id: int | None = None
    sender: RoomSender = Field(alias="from")
    content: str
    payload: object | None = None
    run_id: str | None = Field(default=None, alias="runId")
    agent_id: str | None = Field(default=None, alias="agentId")
    status: str | None = None
    timestamp: int


class RoomMemberPayload(Frame):
    """``room.member``: ``{roomId, action: join|leave, member:{connId, kind, id, name,
    joinedAt}, reason?}`` (``reason``: ``disconnect``, ``stale``, ``left``)."""

    room_id: str = Field(alias="roomId")
    action: Literal["join", "leave"]
    member: dict[str, object]
    reason: str | None = None
    timestamp: int


class NodeMessagePayload(Frame):
    """``node.message``: ``{fromNodeId, toNodeId, message, timestamp}`` (a direct message)."""

    from_node_id: str = Field(alias="fromNodeId")
    to_node_id: str = Field(alias="toNodeId")
    message: object | None = None
    timestamp: int
