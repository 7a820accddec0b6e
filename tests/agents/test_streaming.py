"""agents/runtime/streaming.py: a model wrapped in LeanStream streams the same events and
gives the same answer as the model itself, without holding every chunk until the end."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent

from agents.runtime.offline import OfflineChatModel, offline_model
from agents.runtime.runner import AgentSpec, run_turn
from agents.runtime.streaming import LeanStream, lean_stream
from agents.runtime.tools import build_tools
from tests.agents.test_openai_provider import fake_openai  # noqa: F401 (fixture)


def _without_ids(value: Any) -> Any:
    """Run ids and the offline model's tool-call ids differ from run to run."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "tool_call_id")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


async def _stream(model, prompt: str, tools=()) -> tuple[list, list]:
    """(every on_chat_model_stream event's name and chunk, the final messages)."""
    graph = create_agent(model, list(tools), name="t")
    streamed, final = [], None
    inputs = {"messages": [{"role": "user", "content": prompt}]}
    async for event in graph.astream_events(inputs, version="v2"):
        if event["event"] == "on_chat_model_stream":
            chunk = event["data"]["chunk"]
            streamed.append((event["name"], _without_ids(chunk.model_dump())))
        elif event["event"] == "on_chain_end" and not event["parent_ids"]:
            final = [_without_ids(m.model_dump()) for m in event["data"]["output"]["messages"]]
    return streamed, final


@pytest.mark.parametrize(
    "prompt, tools",
    [
        ("/stream 700", ()),  # more than two merges of 256
        ("/tool list_files {}", ("list_files",)),
        ("hello there", ()),
    ],
)
async def test_same_events_and_answer_as_the_model_itself(prompt, tools, tmp_path):
    model = offline_model("echo")
    wrapped = lean_stream(model)
    assert isinstance(wrapped, LeanStream) and wrapped.get_name() == "OfflineChatModel"
    bound = build_tools(list(tools), tmp_path)
    plain_events, plain_final = await _stream(model, prompt, bound)
    lean_events, lean_final = await _stream(wrapped, prompt, bound)
    assert len(plain_events) > 1
    assert lean_events == plain_events
    assert lean_final == plain_final


@pytest.mark.parametrize(
    "prompt, tools", [("a b c d e f g", ()), ("use list_files", ("list_files",))]
)
async def test_same_for_the_openai_provider(fake_openai, prompt, tools, tmp_path):  # noqa: F811
    from agents.runtime.providers import resolve_model

    model = resolve_model("openai:gpt-test")
    wrapped = lean_stream(model)
    assert isinstance(wrapped, LeanStream)
    bound = build_tools(list(tools), tmp_path)
    plain_events, plain_final = await _stream(model, prompt, bound)
    lean_events, lean_final = await _stream(wrapped, prompt, bound)
    assert lean_events == plain_events
    assert lean_final == plain_final
    assert lean_final[1]["usage_metadata"] == plain_final[1]["usage_metadata"]


def test_models_it_cannot_stream_for_are_left_alone():
    from langchain_core.caches import InMemoryCache

    cached = offline_model("echo").model_copy(update={"cache": InMemoryCache()})
    assert lean_stream(cached) is cached
    unstreamed = offline_model("echo").model_copy(update={"disable_streaming": True})
    assert lean_stream(unstreamed) is unstreamed


def test_tools_bound_some_other_way_keep_the_models_own_binding():
    from langchain_core.runnables import RunnableBinding, RunnableLambda

    class Piped(OfflineChatModel):
        def bind_tools(self, tools, **kwargs):
            return super().bind_tools(tools, **kwargs) | RunnableLambda(lambda m: m)

    usual = lean_stream(offline_model("echo")).bind_tools(build_tools(["list_files"], Path(".")))
    assert isinstance(usual, RunnableBinding) and isinstance(usual.bound, LeanStream)
    assert [t["function"]["name"] for t in usual.kwargs["tools"]] == ["list_files"]
    piped = lean_stream(Piped()).bind_tools(build_tools(["list_files"], Path(".")))
    assert not isinstance(piped, RunnableBinding)  # the model's own pipeline, unwrapped
    assert isinstance(piped.first.bound, Piped)


async def test_a_long_answer_is_not_held_chunk_by_chunk(tmp_path: Path):
    """10k tokens through run_turn: the traced peak stays a few MB (it was ~19 MB, 1.9 KB
    a token, when BaseChatModel kept every chunk until the end)."""
    tokens = 10_000
    seen = 0

    async def emit(step: dict) -> None:
        nonlocal seen
        seen += step["type"] == "agent-stream"

    spec = AgentSpec(agent_id="t", model="wingman:echo")
    await run_turn(spec, history=[], prompt="hi", working_folder=tmp_path, emit=emit)  # warm
    tracemalloc.start()
    try:
        text = await run_turn(
            spec, history=[], prompt=f"/stream {tokens}", working_folder=tmp_path, emit=emit
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "".join(f"t{i} " for i in range(tokens))
    assert peak < 6_000_000, f"{peak / 1e6:.1f} MB traced at the peak"
