"""Runs one agent turn through LangGraph and turns its stream into protocol step events.

``create_agent(model, tools, system_prompt=...)`` + ``astream_events(version="v2")``; each
chat-model chunk becomes ``agent-stream {chunk, text}`` (the raw event made JSON-safe), tool
calls become ``tool-start`` / ``tool-end``. The history comes from our Message rows. The
model is wrapped in :class:`~agents.runtime.streaming.LeanStream`, so a long answer is not
held chunk by chunk while it streams (LangChain's own streaming keeps ~1.9 KB a token).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain.agents import create_agent

from agents.runtime.providers import model_key, resolve_model
from agents.runtime.streaming import lean_stream
from agents.runtime.text import TextBuffer
from agents.runtime.tools import build_all_tools

Emit = Callable[[dict[str, Any]], Awaitable[None]]

#: Compiled agent graphs by what they are made of; building one (the model, LangGraph's
#: graph and its compilation) cost more CPU than a short offline turn itself. A compiled
#: graph keeps no state between invocations, so runs share it, concurrently too.
GRAPH_CACHE_SIZE = 128
_graphs: OrderedDict[tuple, tuple[Any, tuple]] = OrderedDict()
_graphs_lock = threading.Lock()


@dataclass
class AgentSpec:
    """What the runner needs to know about an agent (materialised, no ORM objects)."""

    agent_id: str
    model: str
    system_prompt: str = ""
    tools: list[str] = field(default_factory=list)


def json_safe(value: Any, depth: int = 0) -> Any:
    """Make a LangChain stream value JSON-serialisable (messages become dicts)."""
    if depth > 8:
        return repr(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, depth + 1) for v in value]
    if hasattr(value, "model_dump"):
        data = value.model_dump(exclude_none=True)
        data = {k: v for k, v in data.items() if v not in ({}, [], "") or k == "content"}
        return json_safe(data, depth + 1)
    return repr(value)


def _chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", "")
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


def _stream_chunk(event: dict[str, Any]) -> dict[str, Any]:
    """The raw ``on_chat_model_stream`` event, JSON-safe, without heavy metadata."""
    chunk = event["data"]["chunk"]
    data: dict[str, Any] = {"content": json_safe(chunk.content)}
    if getattr(chunk, "tool_call_chunks", None):
        data["tool_call_chunks"] = json_safe(chunk.tool_call_chunks)
    if getattr(chunk, "id", None):
        data["id"] = chunk.id
    return {"event": event["event"], "name": event.get("name"), "data": {"chunk": data}}


def to_messages(history: list[tuple[str, str]], prompt: str) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in history] + [
        {"role": "user", "content": prompt}
    ]


def agent_graph(spec: AgentSpec, tools: list, system: str) -> Any:
    """The compiled graph for ``spec`` with ``tools`` and ``system``, made once (LRU)."""
    key = (model_key(spec.model), tuple(map(id, tools)), system, spec.agent_id)
    with _graphs_lock:
        hit = _graphs.get(key)
        if hit is not None:
            _graphs.move_to_end(key)
            return hit[0]
    model = lean_stream(resolve_model(spec.model))
    graph = create_agent(model, tools, system_prompt=system or None, name=spec.agent_id)
    with _graphs_lock:
        # the tools are kept with it, so their ids (in the key) stay theirs
        _graphs[key] = (graph, tuple(tools))
        while len(_graphs) > GRAPH_CACHE_SIZE:
            _graphs.popitem(last=False)
    return graph


async def run_turn(
    spec: AgentSpec,
    *,
    history: list[tuple[str, str]],
    prompt: str,
    working_folder: Path,
    emit: Emit,
    extra_system_prompt: str | None = None,
) -> str:
    """Stream one turn; returns the full text the model produced."""
    tools = await build_all_tools(spec.tools, working_folder)
    system = "\n\n".join(p for p in (spec.system_prompt, extra_system_prompt or "") if p)
    graph = agent_graph(spec, tools, system)
    text = TextBuffer()
    inputs = {"messages": to_messages(history, prompt)}
    async for event in graph.astream_events(inputs, version="v2"):
        kind = event["event"]
        if kind == "on_chat_model_stream":
            delta = _chunk_text(event["data"]["chunk"])
            payload: dict[str, Any] = {"type": "agent-stream", "chunk": _stream_chunk(event)}
            if delta:
                payload["text"] = delta
                text.append(delta)
            await emit(payload)
        elif kind == "on_tool_start":
            await emit(
                {
                    "type": "tool-start",
                    "toolName": event["name"],
                    "toolInput": json_safe(event["data"].get("input")),
                }
            )
        elif kind == "on_tool_end":
            output = event["data"].get("output")
            await emit(
                {
                    "type": "tool-end",
                    "toolName": event["name"],
                    "toolOutput": json_safe(getattr(output, "content", output)),
                }
            )
    return str(text)
