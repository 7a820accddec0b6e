"""Shapes of the rooms REST API: inputs validated by the WebSocket methods' own models
(``gateway/protocol/rooms.py``), so both APIs take the same input, and outputs in the shape
the ``rooms.*`` methods answer (``rooms/selectors.py``). Keys are camelCase."""

from __future__ import annotations

from rest_framework import serializers

from agents.models import Agent
from gateway.api.inputs import ProtocolInput
from gateway.protocol import rooms as wire
from rooms.models import Room

STRATEGIES = list(wire.STRATEGIES)


def _check_agents(agent_ids: list[str] | None) -> dict[str, list[str]]:
    """``{"agents": [...]}`` naming unknown or repeated agents (empty when fine)."""
    if not agent_ids:
        return {}
    known = set(Agent.objects.filter(pk__in=agent_ids).values_list("pk", flat=True))
    problems = [f"no agent {a!r}" for a in dict.fromkeys(agent_ids) if a not in known]
    if len(set(agent_ids)) != len(agent_ids):
        problems.append("an agent is listed twice")
    return {"agents": problems} if problems else {}


def _check_name(name: str | None, room: Room | None) -> dict[str, list[str]]:
    if name is None:
        return {}
    taken = Room.objects.filter(name=name.strip())
    if room is not None:
        taken = taken.exclude(pk=room.pk)
    return {"name": [f"a room named {name.strip()!r} exists"]} if taken.exists() else {}


class RoomFieldsInput(ProtocolInput):
    """Create and update: a taken name and unknown agents are 400s keyed by field too."""

    def validate(self, attrs):
        errors = _check_name(attrs.name, self.context.get("room")) | _check_agents(attrs.agents)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class RoomCreateInput(RoomFieldsInput):
    model = wire.RoomsCreateParams

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    strategy = serializers.ChoiceField(STRATEGIES, default="parallel")
    metadata = serializers.DictField(required=False)
    agents = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="member agent ids, in turn order"
    )


class RoomUpdateInput(RoomFieldsInput):
    model = wire.RoomChanges

    name = serializers.CharField(required=False, max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    strategy = serializers.ChoiceField(STRATEGIES, required=False)
    metadata = serializers.DictField(required=False)
    agents = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="the new member agents, in turn order (replaces the list)",
    )


class RoomAgentInput(ProtocolInput):
    model = wire.RoomAgentInput

    agentId = serializers.CharField(max_length=64)


class BroadcastInput(ProtocolInput):
    model = wire.BroadcastMessage

    message = serializers.CharField(max_length=200_000)
    strategy = serializers.ChoiceField(
        STRATEGIES, required=False, help_text="default: the room's strategy"
    )


class HistoryQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=1000,
        default=200,
        help_text="the last N entries (at most WINGMAN_ROOM_HISTORY_LIMIT)",
    )
    before = serializers.IntegerField(
        min_value=1, required=False, help_text="an entry id: only older entries (paging)"
    )


# outputs (the rooms.* methods' shapes: rooms/selectors.py) ----------------------------------
class RoomOutput(serializers.Serializer):
    """``selectors.room_data``."""

    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    strategy = serializers.ChoiceField(STRATEGIES)
    metadata = serializers.DictField()
    createdBy = serializers.CharField()
    createdAt = serializers.IntegerField(help_text="ms since the epoch")
    updatedAt = serializers.IntegerField(help_text="ms since the epoch")
    agents = serializers.ListField(child=serializers.CharField(), help_text="in turn order")


class MemberAgentOutput(serializers.Serializer):
    agentId = serializers.CharField()
    position = serializers.IntegerField()


class LiveMemberOutput(serializers.Serializer):
    connId = serializers.CharField()
    kind = serializers.ChoiceField(["node", "client"])
    id = serializers.CharField()
    name = serializers.CharField()
    joinedAt = serializers.IntegerField(help_text="ms since the epoch")


class MembersOutput(serializers.Serializer):
    """``selectors.room_members``: persisted agents and live connections."""

    roomId = serializers.CharField()
    agents = MemberAgentOutput(many=True)
    live = LiveMemberOutput(many=True)


class BroadcastRunOutput(serializers.Serializer):
    runId = serializers.CharField()
    agentId = serializers.CharField()
    sessionKey = serializers.CharField(help_text="agent:<agentId>:room:<roomId>")


class BroadcastOutput(serializers.Serializer):
    """What ``rooms.broadcast`` answers."""

    roomId = serializers.CharField()
    broadcastId = serializers.CharField()
    strategy = serializers.ChoiceField(STRATEGIES)
    runIds = serializers.ListField(child=serializers.CharField())
    runs = BroadcastRunOutput(many=True, help_text="the runs started now")
    pending = serializers.ListField(
        child=serializers.CharField(),
        help_text="a sequential room's later agents: each run starts when its turn comes",
    )


class SenderOutput(serializers.Serializer):
    kind = serializers.ChoiceField(["user", "client", "node", "agent"])
    id = serializers.CharField()
    name = serializers.CharField()


class HistoryEntryOutput(serializers.Serializer):
    """``selectors.message_data``: a broadcast, or an agent's answer (``runId``,
    ``agentId``, ``status``)."""

    id = serializers.IntegerField()
    roomId = serializers.CharField()
    broadcastId = serializers.CharField()
    content = serializers.CharField()
    payload = serializers.JSONField(required=False)
    runId = serializers.CharField(required=False)
    agentId = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    timestamp = serializers.IntegerField(help_text="ms since the epoch")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = SenderOutput()  # a keyword in Python, a key on the wire
        return fields


class HistoryOutput(serializers.Serializer):
    roomId = serializers.CharField()
    messages = HistoryEntryOutput(many=True)
