"""Agent tools on nodes: an agent configured with ``node:<nodeId|name>:<command>`` (or
``node:<nodeId|name>:*`` for every approved command) gets one tool per command; calling it
is a ``node.invoke``. Refusals, node errors and timeouts reach the model as tool errors.

The agent's configuration is the authorization (an operator with ``operator.admin`` wrote
it), so the invoke runs with every operator scope, ``system.run`` included.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from channels.db import database_sync_to_async
from pydantic import BaseModel, Field

from gateway.protocol.errors import GatewayError
from gateway.security import scopes
from nodes import selectors
from nodes.services import invoke

PREFIX = "node"
_NAME = re.compile(r"^node:([^:]+):([\w.*-]+)$")
TOOL_TIMEOUT_MS = 30_000

if TYPE_CHECKING:  # LangChain is imported where a tool is made: only a process running
    # agents needs it, not every ``django.setup()`` (the CLI, the admin) through apps.py
    from langchain_core.tools import StructuredTool


class NodeToolArgs(BaseModel):
    """What the model passes: the command's params (``system.run``: ``{"command": [argv]}``)."""

    params: dict[str, Any] = Field(default_factory=dict, description="the command's params")
    timeout_ms: int | None = Field(default=None, description="timeout in milliseconds")


def tool_name(label: str, command: str) -> str:
    """The name the model sees: ``node_<label>_<command>`` (OpenAI-safe characters)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", f"node_{label}_{command}")
    return safe[:64]


def _node_tool(node_id: str, label: str, command: str) -> StructuredTool:
    from langchain_core.tools import StructuredTool, ToolException

    async def call(params: dict[str, Any] | None = None, timeout_ms: int | None = None) -> str:
        try:
            result = await invoke.node_invoke(
                node_id=node_id,
                command=command,
                params=params or {},
                timeout_ms=timeout_ms or TOOL_TIMEOUT_MS,
                idempotency_key=None,
                caller_scopes=list(scopes.OPERATOR_SCOPES),
            )
        except GatewayError as err:
            raise ToolException(f"{err.code}: {err.message}") from None
        payload = result["payload"]
        return payload if isinstance(payload, str) else orjson.dumps(payload).decode()

    return StructuredTool.from_function(
        coroutine=call,
        name=tool_name(label, command),
        description=f"Run `{command}` on node {label} (params as the node expects them).",
        args_schema=NodeToolArgs,
        handle_tool_error=True,
    )


async def node_tools(name: str) -> list[StructuredTool]:
    """The tools ``name`` (``node:<ref>:<command|*>``) stands for; ``ToolException`` for a
    malformed name. An unknown node still gets its explicit command (the invoke then says
    the node is not connected), and ``*`` of an unknown node gives no tool."""
    from langchain_core.tools import ToolException

    match = _NAME.match(name)
    if match is None:
        raise ToolException(f"bad node tool {name!r}: expected node:<nodeId|name>:<command|*>")
    ref, command = match.groups()
    node = await database_sync_to_async(selectors.node_resolve)(ref=ref)
    node_id = node.node_id if node is not None else ref
    label = (node.display_name if node is not None and node.display_name else ref)[:24]
    if command != "*":
        return [_node_tool(node_id, label, command)]
    if node is None or node.approved_at is None:
        return []
    allowed = [c for c in node.commands if not c.startswith(invoke.REFUSED_PREFIXES)]
    return [_node_tool(node_id, label, c) for c in allowed]
