"""Wire models of the ``nodes.*`` methods: swarm nodes (seed 000), which the wingman-node
dialect's frames call (``register`` → ``nodes.register``, ``join_group`` → ``nodes.join``,
...) and any other dialect may call by name. Groups are rooms."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from gateway.protocol.base import Frame


class NodeRegisterParams(Frame):
    """``nodes.register {name, capabilities?}`` → ``{nodeId, name}`` (the token, if any, was
    the handshake's)."""

    name: str = Field(min_length=1, max_length=200)
    capabilities: list[str] = Field(default_factory=list, max_length=100)


class NodeJoinParams(Frame):
    """``nodes.join {groupName | groupId, createIfNotExists?, description?}`` →
    ``{groupId, groupName}``."""

    group_id: str | None = Field(default=None, alias="groupId", min_length=1, max_length=200)
    group_name: str | None = Field(default=None, alias="groupName", min_length=1, max_length=200)
    create_if_not_exists: bool = Field(default=False, alias="createIfNotExists")
    description: str = Field(default="", max_length=2000)
    strategy: str | None = Field(default=None, max_length=12)

    @model_validator(mode="after")
    def _one_group(self) -> NodeJoinParams:
        if not self.group_id and not self.group_name:
            raise ValueError("groupName or groupId is required")
        return self


class NodeGroupParams(Frame):
    """``nodes.leave {groupId | groupName}`` → ``{groupId, left}``."""

    group_id: str | None = Field(default=None, alias="groupId", min_length=1, max_length=200)
    group_name: str | None = Field(default=None, alias="groupName", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_group(self) -> NodeGroupParams:
        if not self.group_id and not self.group_name:
            raise ValueError("groupId or groupName is required")
        return self


class NodeBroadcastParams(Frame):
    """``nodes.broadcast {groupId, message}`` → ``{groupId, broadcastId, runIds}``; every
    other member receives the message (``message``: any JSON, e.g. ``{type, content}``)."""

    group_id: str = Field(alias="groupId", min_length=1, max_length=200)
    message: Any = None

    @model_validator(mode="after")
    def _has_message(self) -> NodeBroadcastParams:
        if self.message is None or self.message == "" or self.message == {}:
            raise ValueError("message is required")
        return self


class NodeDirectParams(Frame):
    """``nodes.direct {targetNodeId, message}`` → ``{targetNodeId, delivered}``."""

    target_node_id: str = Field(alias="targetNodeId", min_length=1, max_length=64)
    message: Any = None

    @model_validator(mode="after")
    def _has_message(self) -> NodeDirectParams:
        if self.message is None:
            raise ValueError("message is required")
        return self


class ClientBroadcastParams(Frame):
    """``rooms.broadcast.stream {roomId, message}``: broadcast to a room and receive its
    member agents' runs as answers to this request (the wingman-client ``broadcast``)."""

    room_id: str = Field(alias="roomId", min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=200_000)
    strategy: str | None = Field(default=None, max_length=12)
