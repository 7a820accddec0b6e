"""Params of the agent, chat and session methods (design/protocol.md, "Methods")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.protocol.base import Frame

SessionKey = Field(min_length=1, max_length=500, alias="sessionKey")


class PeerParams(Frame):
    kind: Literal["dm", "group", "channel"]
    id: str = Field(min_length=1, max_length=200)


class RoutingParams(Frame):
    """The inbound message's channel identity (seed 001 "Channels and Accounts")."""

    channel: str = Field(min_length=1, max_length=100)
    account_id: str | None = Field(default=None, alias="accountId", max_length=200)
    guild_id: str | None = Field(default=None, alias="guildId", max_length=200)
    team_id: str | None = Field(default=None, alias="teamId", max_length=200)
    peer: PeerParams | None = None
    thread_id: str | None = Field(default=None, alias="threadId", max_length=200)


class RunParams(Frame):
    """What a run takes: the ``agent`` method's params, and the body of ``POST /api/runs``
    (agents/api/serializers.py validates with this model, so both APIs take the same input)."""

    message: str = Field(min_length=1, max_length=200_000)
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    session_key: str | None = Field(default=None, alias="sessionKey", max_length=500)
    routing: RoutingParams | None = None
    idempotency_key: str | None = Field(default=None, alias="idempotencyKey", max_length=200)
    timeout: float | None = Field(default=None, gt=0, le=86_400, description="seconds")
    queue: bool = Field(default=True, description="false: refuse with CONFLICT when busy")
    extra_system_prompt: str | None = Field(
        default=None, alias="extraSystemPrompt", max_length=20_000
    )

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class AgentParams(RunParams):
    """``agent``: run the routed (or named) agent on ``message``.

    Accepted and ignored: ``deliver``, ``thinking``, ``label``, ``attachments``,
    ``execution`` (the Wingman CLI's local workspace hint).
    """

    attachments: list[Any] | None = None
    deliver: bool | None = None
    thinking: Any = None
    label: str | None = Field(default=None, max_length=200)
    execution: dict[str, Any] | None = None


class RunIdParams(Frame):
    run_id: str = Field(alias="runId", min_length=1, max_length=64)


class AgentWaitParams(RunIdParams):
    timeout_ms: int | None = Field(default=None, alias="timeoutMs", ge=0, le=86_400_000)


class AgentCancelParams(Frame):
    """``agent.cancel {runId}`` (or the Wingman CLI's ``requestId``)."""

    run_id: str | None = Field(default=None, alias="runId", max_length=64)
    request_id: str | None = Field(default=None, alias="requestId", max_length=256)


class ChatAbortParams(Frame):
    session_key: str = SessionKey
    run_id: str | None = Field(default=None, alias="runId", max_length=64)


class ChatHistoryParams(Frame):
    session_key: str = SessionKey
    limit: int = Field(default=200, ge=1, le=1000)


class SessionKeyParams(Frame):
    session_key: str = SessionKey


class SessionsListParams(Frame):
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    limit: int = Field(default=100, ge=1, le=1000)


class SessionsCreateParams(Frame):
    agent_id: str | None = Field(default=None, alias="agentId", max_length=64)
    name: str | None = Field(default=None, max_length=200)
    working_folder: str | None = Field(default=None, alias="workingFolder", max_length=1000)


class SessionsRenameParams(Frame):
    session_key: str = SessionKey
    name: str = Field(max_length=200)


class SessionsFolderParams(Frame):
    session_key: str = SessionKey
    working_folder: str = Field(alias="workingFolder", max_length=1000)
