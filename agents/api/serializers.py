"""Shapes of the agents REST API: what comes in (``*Input``) and what goes out (``*Output``).

Keys are camelCase like the WebSocket protocol. Sessions, messages and runs go out in the
exact shape the WebSocket methods use (``agents/selectors.py``); their Output serializers
declare that shape for the OpenAPI schema and render through the selector, so the two
cannot drift (tests/agents/test_api.py checks the declared fields against the selector).
Rules (tool names, model format, folders, the default agent) live in the services; inputs
here check types and lengths the database needs and reject unknown fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents import selectors
from agents.models import Agent, Binding, PeerKind, RunStatus
from agents.services import sessions as session_service
from gateway.api.inputs import TRANSPORT_FIELDS, protocol_input
from gateway.protocol.agent import RunParams
from gateway.protocol.errors import GatewayError

#: Model field → API field, for errors the services raise keyed by model field.
API_FIELD_NAMES = {
    "system_prompt": "systemPrompt",
    "agent_dir": "agentDir",
    "is_default": "default",
    "account_id": "accountId",
    "guild_id": "guildId",
    "team_id": "teamId",
    "peer_kind": "peerKind",
    "peer_id": "peerId",
    "agent": "agentId",
    "working_folder": "workingFolder",
}


class StrictInput(serializers.Serializer):
    """An input that names unknown fields in a 400 instead of ignoring them (typos)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields) - TRANSPORT_FIELDS)
            if unknown:
                raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.INT)
class MillisecondsField(serializers.ReadOnlyField):
    """A datetime as milliseconds since the epoch (as in the WebSocket protocol)."""

    def to_representation(self, value):
        return int(value.timestamp() * 1000) if value else None


# agents and bindings ---------------------------------------------------------------------
class BindingOutput(serializers.ModelSerializer):
    agentId = serializers.CharField(source="agent_id")
    accountId = serializers.CharField(source="account_id")
    guildId = serializers.CharField(source="guild_id")
    teamId = serializers.CharField(source="team_id")
    peerKind = serializers.CharField(source="peer_kind")
    peerId = serializers.CharField(source="peer_id")
    createdAt = MillisecondsField(source="created_at")

    class Meta:
        model = Binding
        fields = (
            "id",
            "agentId",
            "channel",
            "accountId",
            "guildId",
            "teamId",
            "peerKind",
            "peerId",
            "order",
            "createdAt",
        )
        read_only_fields = fields


class AgentOutput(serializers.ModelSerializer):
    systemPrompt = serializers.CharField(source="system_prompt")
    agentDir = serializers.CharField(source="agent_dir")
    default = serializers.BooleanField(source="is_default")
    tools = serializers.ListField(child=serializers.CharField())
    bindings = BindingOutput(many=True)
    createdAt = MillisecondsField(source="created_at")
    updatedAt = MillisecondsField(source="updated_at")

    class Meta:
        model = Agent
        fields = (
            "id",
            "name",
            "model",
            "systemPrompt",
            "tools",
            "workspace",
            "agentDir",
            "default",
            "enabled",
            "bindings",
            "createdAt",
            "updatedAt",
        )
        read_only_fields = fields


class AgentUpdateInput(StrictInput):
    """PUT replaces every field (missing ones get these defaults); PATCH changes some."""

    name = serializers.CharField(allow_blank=True, default="")
    model = serializers.CharField(
        allow_blank=True, default="", help_text='"provider:model"; empty = the gateway default'
    )
    systemPrompt = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)
    tools = serializers.ListField(child=serializers.CharField(), default=list)
    workspace = serializers.CharField(allow_blank=True, default="")
    agentDir = serializers.CharField(allow_blank=True, default="")
    enabled = serializers.BooleanField(default=True)
    default = serializers.BooleanField(
        default=False, help_text="true makes it the default agent (the previous one stops being it)"
    )

    def service_kwargs(self) -> dict:
        """``validated_data`` as keyword arguments of agent_create/agent_update."""
        names = {"systemPrompt": "system_prompt", "agentDir": "agent_dir", "default": "is_default"}
        return {names.get(k, k): v for k, v in self.validated_data.items()}


class AgentDeleteQuery(serializers.Serializer):
    force = serializers.BooleanField(
        default=False, help_text="true: also delete the agent's sessions and their history"
    )


class AgentDeleteRefused(serializers.Serializer):
    """409: the default agent, or an agent with sessions and no ``force``."""

    detail = serializers.CharField()
    code = serializers.CharField()
    sessions = serializers.IntegerField(
        required=False, help_text="the agent's sessions (when they are the reason)"
    )


class AgentCreateInput(AgentUpdateInput):
    id = serializers.CharField(
        help_text="lowercase letters, digits, '-' and '_', starting with a letter or digit"
    )


class BindingInput(StrictInput):
    """A routing binding; PATCH changes some fields (``agentId`` moves it to another agent)."""

    agentId = serializers.PrimaryKeyRelatedField(queryset=Agent.objects.all(), source="agent")
    channel = serializers.CharField()
    accountId = serializers.CharField(allow_blank=True, default="", source="account_id")
    guildId = serializers.CharField(allow_blank=True, default="", source="guild_id")
    teamId = serializers.CharField(allow_blank=True, default="", source="team_id")
    peerKind = serializers.ChoiceField(
        choices=["", *PeerKind.values], default="", source="peer_kind"
    )
    peerId = serializers.CharField(allow_blank=True, default="", source="peer_id")
    order = serializers.IntegerField(min_value=0, max_value=2_147_483_647, default=0)


class BindingFilter(serializers.Serializer):
    """Query filters (other query parameters, such as ``limit``, are not filters)."""

    agent = serializers.CharField(required=False, help_text="only this agent's bindings")
    channel = serializers.CharField(required=False)


# sessions and messages -------------------------------------------------------------------
class SessionOutput(serializers.Serializer):
    """``selectors.session_data``: the shape of the WebSocket ``sessions.*`` methods."""

    sessionKey = serializers.CharField()
    agentId = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    channel = serializers.CharField(allow_null=True)
    workingFolder = serializers.CharField(allow_null=True)
    messageCount = serializers.IntegerField()
    lastPreview = serializers.CharField(allow_null=True)
    createdAt = serializers.IntegerField(help_text="ms since the epoch")
    updatedAt = serializers.IntegerField(help_text="ms since the epoch")

    def to_representation(self, instance):
        return selectors.session_data(instance)


class SessionCreateInput(StrictInput):
    agentId = serializers.CharField(
        required=False, allow_null=True, help_text="default: the default agent"
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")

    def validate_agentId(self, value):
        if value:
            return _enabled_agent(value)
        return None


class SessionUpdateInput(StrictInput):
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    workingFolder = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text='absolute path inside gateway.fsRoots; "" clears it',
    )


class SessionFilter(serializers.Serializer):
    agent = serializers.CharField(required=False, help_text="agent id")
    channel = serializers.CharField(required=False)
    search = serializers.CharField(required=False, help_text="text in the name or the key")


class MessageOutput(serializers.Serializer):
    """``selectors.message_data``."""

    role = serializers.CharField()
    content = serializers.CharField()
    runId = serializers.CharField(allow_null=True)
    position = serializers.IntegerField()
    createdAt = serializers.IntegerField(help_text="ms since the epoch")

    def to_representation(self, instance):
        return selectors.message_data(instance)


# runs ------------------------------------------------------------------------------------
class RunOutput(serializers.Serializer):
    """``selectors.run_data``: status, prompt and result of one run."""

    runId = serializers.CharField()
    status = serializers.ChoiceField(choices=RunStatus.values)
    sessionKey = serializers.CharField()
    agentId = serializers.CharField()
    source = serializers.CharField()
    prompt = serializers.CharField()
    result = serializers.CharField(help_text="the answer (the partial answer when cancelled)")
    error = serializers.CharField(allow_null=True)
    createdAt = serializers.IntegerField()
    startedAt = serializers.IntegerField(allow_null=True)
    endedAt = serializers.IntegerField(allow_null=True)

    def to_representation(self, instance):
        return selectors.run_data(instance)


class PeerInput(StrictInput):
    kind = serializers.ChoiceField(choices=PeerKind.values)
    id = serializers.CharField(max_length=200)


class RoutingInput(StrictInput):
    """The inbound message's channel identity: picks the agent (bindings) and session."""

    channel = serializers.CharField(max_length=100)
    accountId = serializers.CharField(required=False, max_length=200)
    guildId = serializers.CharField(required=False, max_length=200)
    teamId = serializers.CharField(required=False, max_length=200)
    peer = PeerInput(required=False)
    threadId = serializers.CharField(required=False, max_length=200)


class RunCreateInput(StrictInput):
    """What ``POST /api/runs`` takes (the WebSocket ``agent`` method's params)."""

    message = serializers.CharField(max_length=200_000, trim_whitespace=False)
    agentId = serializers.CharField(required=False, allow_null=True, max_length=64)
    sessionKey = serializers.CharField(
        required=False, allow_null=True, max_length=500, help_text="agent:<agentId>:..."
    )
    routing = RoutingInput(required=False, allow_null=True)
    queue = serializers.BooleanField(
        default=True, help_text="false: answer 409 instead of queueing behind a running run"
    )
    timeout = serializers.FloatField(
        required=False, allow_null=True, min_value=0.001, max_value=86_400, help_text="seconds"
    )
    idempotencyKey = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        help_text="a retry with the same key returns the same run (or the Idempotency-Key header)",
    )
    extraSystemPrompt = serializers.CharField(required=False, allow_null=True, max_length=20_000)

    def to_internal_value(self, data) -> RunParams:
        """``RunParams`` validates, the model of the WebSocket ``agent`` method: the two APIs
        take the same input (the fields above only declare its shape for the OpenAPI schema;
        tests/agents/test_api.py keeps them in step)."""
        return protocol_input(RunParams, data)

    def validate(self, attrs: RunParams) -> RunParams:
        key, agent_id = attrs.session_key, attrs.agent_id
        field = "agentId" if agent_id else "sessionKey"
        try:
            owner = session_service.check_key_agent(key, agent_id) if key else agent_id
        except GatewayError as exc:
            raise serializers.ValidationError({field: [exc.message]}) from exc
        if owner:
            _enabled_agent(owner, field=field)
        return attrs


class RunCreateOutput(serializers.Serializer):
    """The accepted run (or, for a retried idempotency key, the run it started)."""

    runId = serializers.CharField(source="run_id")
    status = serializers.ChoiceField(choices=RunStatus.values)
    sessionKey = serializers.CharField(source="session_key")
    agentId = serializers.CharField(source="agent_id")
    acceptedAt = serializers.IntegerField(source="accepted_at", help_text="ms since the epoch")
    queuePosition = serializers.IntegerField(
        source="position", help_text="runs ahead of it in the session"
    )
    duplicate = serializers.BooleanField(help_text="true: the idempotency key was seen before")


class RunFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=RunStatus.values, required=False)
    session = serializers.CharField(required=False, help_text="session key")
    agent = serializers.CharField(required=False, help_text="agent id")


class RunCancelOutput(serializers.Serializer):
    runId = serializers.CharField()
    cancelled = serializers.BooleanField(
        help_text="false: the run had already ended; its terminal event follows otherwise"
    )


def _enabled_agent(agent_id: str, *, field: str | None = None) -> Agent:
    """The agent, or a 400 naming ``field`` when it does not exist or is disabled."""
    try:
        return session_service.agent_get(agent_id)
    except GatewayError as exc:
        error = [exc.message]
        raise serializers.ValidationError({field: error} if field else error) from exc
