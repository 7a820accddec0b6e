"""A run's replay (agents/services/runs/stream.py): what a follower that joins a live run is
given, and that it stays the size of the text, not of the events."""

from __future__ import annotations

import json

import pytest

from agents.runtime.text import TextBuffer
from agents.services.runs import RunTicket
from agents.services.runs.stream import RunStream


def _ticket() -> RunTicket:
    return RunTicket(
        run_id="r1", session_key="agent:main:main", agent_id="main", status="running", accepted_at=0
    )


def test_text_buffer_joins_its_parts_as_it_grows() -> None:
    buf = TextBuffer()
    assert not buf and str(buf) == ""
    for i in range(TextBuffer.JOIN_EVERY * 3 + 5):
        buf.append(f"t{i} ")
    assert len(buf._parts) <= TextBuffer.JOIN_EVERY
    assert str(buf) == "".join(f"t{i} " for i in range(TextBuffer.JOIN_EVERY * 3 + 5))
    assert len(buf._parts) == 1 and buf


async def test_replay_merges_text_between_tool_steps(hub_cleanup) -> None:
    stream = RunStream(_ticket())
    assert stream.snapshot() == {"seq": 0, "events": []}
    await stream.emit({"type": "agent-start", "agent": "main", "prompt": "go"})
    chunk = {"event": "on_chat_model_stream", "name": "M", "data": {"chunk": {"content": ""}}}
    for word in ("Let ", "me ", "look. "):
        await stream.emit({"type": "agent-stream", "chunk": chunk, "text": word})
    await stream.emit({"type": "agent-stream", "chunk": chunk})  # a tool-call chunk: no text
    await stream.emit({"type": "tool-start", "toolName": "list_files", "toolInput": {}})
    await stream.emit({"type": "tool-end", "toolName": "list_files", "toolOutput": "a.txt"})
    await stream.emit({"type": "agent-stream", "chunk": chunk, "text": "Found "})
    await stream.emit({"type": "agent-stream", "chunk": chunk, "text": "a.txt"})

    snap = stream.snapshot()
    assert snap["seq"] == 9
    events = snap["events"]
    assert [e["type"] for e in events] == [
        "agent-start",
        "agent-stream",
        "tool-start",
        "tool-end",
        "agent-stream",
    ]
    assert [e["seq"] for e in events] == [1, 4, 6, 7, 9]
    first, second = events[1], events[4]
    assert first["text"] == "Let me look. " and first["replay"] is True
    assert first["chunk"] == {
        "event": "on_chat_model_stream",
        "name": "M",
        "data": {"chunk": {"content": "Let me look. "}},
    }
    assert second["text"] == "Found a.txt"
    assert all(e["runId"] == "r1" and e["sessionKey"] == "agent:main:main" for e in events)
    assert stream.text() == "Let me look. Found a.txt"
    json.dumps(snap)  # it crosses the channel layer as JSON

    await stream.emit({"type": "agent-complete", "result": {"text": stream.text()}})
    done = stream.snapshot()
    assert done["seq"] == 10 and done["events"][-1]["type"] == "agent-complete"


@pytest.mark.parametrize("tokens", [20_000])
async def test_replay_costs_the_text_not_the_events(hub_cleanup, tokens) -> None:
    """Kept per token: about the token's text, not an event (the events were ~300 bytes)."""
    import tracemalloc

    stream = RunStream(_ticket())
    chunk = {"event": "on_chat_model_stream", "name": "M", "data": {"chunk": {"content": ""}}}
    await stream.emit({"type": "agent-start", "agent": "main", "prompt": "go"})
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(tokens):
            await stream.emit({"type": "agent-stream", "chunk": chunk, "text": f"t{i} "})
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    text_bytes = len(stream.text())
    assert held < 2 * text_bytes + 64_000, (held, text_bytes)
