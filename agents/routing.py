"""Routing: which agent answers an inbound message, and which session it lands in.

Seed 001, "Bindings and Routing": most specific first —
1. peer match (exact DM/group/channel id)
2. guildId or teamId match
3. accountId match for a channel
4. channel match
5. default agent (``default: true``, else the first)
Within one tier the binding with the lower ``order`` (then the older one) wins. A binding
only matches when every field it sets matches the message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agents.models import Agent, Binding
from gateway.protocol.agent import RoutingParams


@dataclass(frozen=True, slots=True)
class Peer:
    kind: str  # "dm" | "group" | "channel"
    id: str


@dataclass(frozen=True, slots=True)
class Route:
    """Normalised channel identity of an inbound message."""

    channel: str = ""
    account_id: str = ""
    guild_id: str = ""
    team_id: str = ""
    peer: Peer | None = None
    thread_id: str = ""

    @classmethod
    def from_wire(cls, routing: RoutingParams | None) -> Route | None:
        """The route of a request's ``routing`` params (every entry point: WebSocket, REST)."""
        if routing is None:
            return None
        return cls(
            channel=routing.channel,
            account_id=routing.account_id or "",
            guild_id=routing.guild_id or "",
            team_id=routing.team_id or "",
            peer=Peer(routing.peer.kind, routing.peer.id) if routing.peer else None,
            thread_id=routing.thread_id or "",
        )


def _tier(binding: Binding) -> int:
    """Lower is more specific."""
    if binding.peer_id:
        return 1
    if binding.guild_id or binding.team_id:
        return 2
    if binding.account_id:
        return 3
    return 4


def _matches(binding: Binding, route: Route) -> bool:
    if binding.channel != route.channel:
        return False
    checks = (
        (binding.account_id, route.account_id),
        (binding.guild_id, route.guild_id),
        (binding.team_id, route.team_id),
    )
    if any(want and want != have for want, have in checks):
        return False
    if binding.peer_id:
        if route.peer is None or route.peer.id != binding.peer_id:
            return False
        if binding.peer_kind and binding.peer_kind != route.peer.kind:
            return False
    return True


def match_binding(bindings: Iterable[Binding], route: Route) -> Binding | None:
    """The most specific binding that matches ``route`` (bindings of enabled agents only)."""
    candidates = [b for b in bindings if _matches(b, route)]
    if not candidates:
        return None
    return min(candidates, key=lambda b: (_tier(b), b.order, b.id))


def default_agent(agents: Iterable[Agent]) -> Agent | None:
    """The ``default: true`` agent, else the first."""
    listed = list(agents)
    for agent in listed:
        if agent.is_default:
            return agent
    return listed[0] if listed else None


def session_key(agent_id: str, route: Route | None) -> str:
    """Seed 001's session key table.

    ``agent:main:main`` (no channel identity, or a DM: DMs collapse to the main session),
    ``agent:main:discord:channel:123456``, ``...:thread:789``, with ``account:<id>`` after the
    channel when an account is given. Routine and webhook keys: :func:`routine_session_key`,
    :func:`webhook_session_key`.
    """
    main = f"agent:{agent_id}:main"
    if route is None or not route.channel or route.peer is None or route.peer.kind == "dm":
        return main
    parts = ["agent", agent_id, route.channel]
    if route.account_id:
        parts += ["account", route.account_id]
    parts += [route.peer.kind, route.peer.id]
    if route.thread_id:
        parts += ["thread", route.thread_id]
    return ":".join(parts)


def routine_session_key(agent_id: str, routine_id: str | int) -> str:
    return f"agent:{agent_id}:routine:{routine_id}"


def webhook_session_key(agent_id: str, webhook_id: str | int) -> str:
    return f"agent:{agent_id}:webhook:{webhook_id}"


def room_session_key(agent_id: str, room_id: str) -> str:
    """An agent's session in a room (seed 001): ``agent:<agentId>:room:<roomId>``."""
    return f"agent:{agent_id}:room:{room_id}"


def room_of_session_key(key: str) -> str | None:
    """The room a room session key belongs to (``agent:<id>:room:<roomId>``), or None."""
    parts = key.split(":")
    if len(parts) == 4 and parts[0] == "agent" and parts[2] == "room" and parts[3]:
        return parts[3]
    return None


def agent_of_session_key(key: str) -> str | None:
    """The agent id a session key belongs to (``agent:<id>:...``), or None."""
    parts = key.split(":")
    if len(parts) >= 3 and parts[0] == "agent" and parts[1]:
        return parts[1]
    return None
