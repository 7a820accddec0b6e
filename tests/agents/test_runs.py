"""Agent runs through the real ASGI app (``tests.gateway.communicator.Client``), on the
embedded backend and on the real Redis (``backend`` fixture): ack, ordered agent events,
final result, persistence, tools, cancel, queueing, timeout, failure, idempotency and the
session methods."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.conf import settings

from agents.models import Message, Run, RunStatus
from agents.services.runs import execute
from tests.agents.conftest import (
    TERMINAL_TYPES,
    acreate_agent,
    agent_call,
    check_run_events,
    quiet,
)
from tests.gateway.communicator import Client

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_FRAME = 10.0  # seconds to wait for any one frame while a slow run streams


@pytest.fixture
async def main_agent(backend):
    return await acreate_agent("main", is_default=True, name="Main")


@pytest.fixture
async def slow_agent(backend):
    return await acreate_agent("slowpoke", model="wingman:slow")


def rid() -> str:
    return f"r-{uuid.uuid4().hex[:8]}"


def is_final(frame: dict, request_id: str) -> bool:
    return (
        frame.get("type") == "res"
        and frame.get("id") == request_id
        and (not frame["ok"] or frame["payload"].get("status") != "accepted")
    )


def is_ack(frame: dict, request_id: str) -> bool:
    return (
        frame.get("type") == "res"
        and frame.get("id") == request_id
        and frame["ok"]
        and frame["payload"].get("status") == "accepted"
    )


async def read_until(client: Client, done, *, timeout: float = SLOW_FRAME, limit: int = 5000):
    """Frames until ``done(frames)`` is true (each frame within ``timeout``)."""
    frames: list[dict] = []
    for _ in range(limit):
        frames.append(await client.recv(timeout))
        if done(frames):
            return frames
    raise AssertionError(f"condition not met in {limit} frames: {frames[-3:]}")


def run_events(frames: list[dict], run_id: str) -> list[dict]:
    return [
        f["payload"]
        for f in frames
        if f.get("event") == "agent" and f["payload"].get("runId") == run_id
    ]


async def send_agent(client: Client, params: dict, request_id: str | None = None) -> str:
    request_id = request_id or rid()
    await client.send({"type": "req", "id": request_id, "method": "agent", "params": params})
    return request_id


async def messages_of(key: str) -> list[tuple[str, str]]:
    return [
        (m.role, m.content)
        async for m in Message.objects.filter(session__key=key).order_by("position")
    ]


async def start_streaming(client: Client, params: dict, *, tokens: int = 2):
    """Send ``agent``; return (request id, ack payload, frames) once ``tokens`` stream
    events of the run arrived."""
    request_id = await send_agent(client, params)
    frames = await read_until(
        client,
        lambda fs: (
            any(is_ack(f, request_id) for f in fs)
            and sum(
                1
                for f in fs
                if f.get("event") == "agent" and f["payload"]["type"] == "agent-stream"
            )
            >= tokens
        ),
    )
    ack = next(f for f in frames if is_ack(f, request_id))["payload"]
    return request_id, ack, frames


# --------------------------------------------------------------------------------------
# one run, start to end
# --------------------------------------------------------------------------------------
async def test_agent_ack_events_final_and_persistence(clients, main_agent):
    c = clients()
    await c.handshake()
    request_id = rid()
    ack, events, final, frames = await agent_call(
        c, {"message": "hello gateway", "idempotencyKey": "k-1"}, rid=request_id
    )
    assert ack["ok"] is True, ack
    a = ack["payload"]
    assert a["status"] == "accepted"
    assert (a["sessionKey"], a["agentId"]) == ("agent:main:main", "main")
    assert isinstance(a["runId"], str) and a["runId"]
    assert isinstance(a["acceptedAt"], int)
    assert "queuePosition" not in a and "duplicate" not in a

    check_run_events(events, run_id=a["runId"], session_key="agent:main:main", agent_id="main")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "agent-start" and kinds[-1] == "agent-complete"
    assert set(kinds[1:-1]) == {"agent-stream"}
    assert events[0]["agent"] == "main" and events[0]["prompt"] == "hello gateway"
    streamed = [e["text"] for e in events if e.get("text")]
    assert len(streamed) >= 3 and "".join(streamed) == "You said: hello gateway"
    assert all(e["chunk"]["event"] == "on_chat_model_stream" for e in events[1:-1])
    expected = {
        "text": "You said: hello gateway",
        "payloads": [{"text": "You said: hello gateway"}],
    }
    assert events[-1]["result"] == expected

    # the final res comes after the terminal event and has the OpenClaw shape
    assert final["ok"] is True and final["id"] == request_id
    assert final["payload"] == {
        "runId": a["runId"],
        "status": "ok",
        "summary": "completed",
        "result": expected,
    }
    # the connection's event seq grows by exactly 1 (events only; responses carry none)
    seqs = [f["seq"] for f in frames if f.get("type") == "event"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs

    assert await messages_of("agent:main:main") == [
        ("user", "hello gateway"),
        ("assistant", "You said: hello gateway"),
    ]
    run = await Run.objects.aget(pk=a["runId"])
    assert run.status == RunStatus.OK
    assert run.result == "You said: hello gateway" and run.error == ""
    assert run.started_at is not None and run.ended_at is not None

    history = await c.call("chat.history", {"sessionKey": "agent:main:main"})
    messages = history["payload"]["messages"]
    assert [(m["role"], m["content"], m["runId"]) for m in messages] == [
        ("user", "hello gateway", a["runId"]),
        ("assistant", "You said: hello gateway", a["runId"]),
    ]
    assert [m["position"] for m in messages] == [0, 1]
    limited = await c.call("chat.history", {"sessionKey": "agent:main:main", "limit": 1})
    assert [m["role"] for m in limited["payload"]["messages"]] == ["assistant"]

    waited = await c.call("agent.wait", {"runId": a["runId"], "timeoutMs": 1000})
    assert waited["payload"]["status"] == "ok"
    assert waited["payload"]["startedAt"] <= waited["payload"]["endedAt"]


async def test_ack_comes_before_any_agent_event(clients, main_agent):
    c = clients()
    await c.handshake()
    request_id = await send_agent(c, {"message": "order please"})
    frames = await read_until(c, lambda fs: is_final(fs[-1], request_id))
    ack_at = next(i for i, f in enumerate(frames) if is_ack(f, request_id))
    first_agent = next(i for i, f in enumerate(frames) if f.get("event") == "agent")
    final_at = len(frames) - 1
    last_agent = max(i for i, f in enumerate(frames) if f.get("event") == "agent")
    assert ack_at < first_agent and last_agent < final_at


async def test_second_turn_keeps_the_conversation(clients, main_agent):
    c = clients()
    await c.handshake()
    for text in ("one", "two"):
        _, _, final, _ = await agent_call(c, {"message": text})
        assert final["payload"]["status"] == "ok"
    assert await messages_of("agent:main:main") == [
        ("user", "one"),
        ("assistant", "You said: one"),
        ("user", "two"),
        ("assistant", "You said: two"),
    ]
    listed = await c.call("sessions.list", {})
    [session] = listed["payload"]["sessions"]
    assert session["sessionKey"] == "agent:main:main" and session["messageCount"] == 4
    assert session["lastPreview"] == "You said: two"


async def test_tool_events_for_an_allowed_tool(clients, backend):
    await acreate_agent("coder", tools=["list_files"])
    folder = settings.WINGMAN.state_dir / "outputs" / "coder"
    folder.mkdir(parents=True, exist_ok=True)
    marker = f"marker-{uuid.uuid4().hex[:6]}.txt"
    (folder / marker).write_text("x")
    c = clients()
    await c.handshake()
    ack, events, final, _ = await agent_call(
        c, {"message": "/tool list_files {}", "agentId": "coder"}
    )
    run_id = ack["payload"]["runId"]
    check_run_events(events, run_id=run_id, session_key="agent:coder:main", agent_id="coder")
    kinds = [e["type"] for e in events]
    assert kinds.count("tool-start") == kinds.count("tool-end") == 1
    assert kinds.index("tool-start") < kinds.index("tool-end") < kinds.index("agent-complete")
    start = events[kinds.index("tool-start")]
    end = events[kinds.index("tool-end")]
    assert start["toolName"] == end["toolName"] == "list_files"
    assert start["toolInput"] == {}
    assert marker in end["toolOutput"]
    assert final["payload"]["status"] == "ok"
    assert marker in final["payload"]["result"]["text"]


async def test_tool_not_allowed_is_refused(clients, main_agent):
    c = clients()
    await c.handshake()
    _, events, final, _ = await agent_call(c, {"message": "/tool write_file {}"})
    assert not [e for e in events if e["type"].startswith("tool-")]
    assert "cannot use the tool 'write_file'" in final["payload"]["result"]["text"]


# --------------------------------------------------------------------------------------
# cancel
# --------------------------------------------------------------------------------------
async def _assert_cancelled(c: Client, request_id: str, ack: dict, frames: list[dict], rest):
    frames = frames + rest
    events = run_events(frames, ack["runId"])
    check_run_events(
        events, run_id=ack["runId"], session_key=ack["sessionKey"], agent_id=ack["agentId"]
    )
    assert events[-1]["type"] == "agent-cancelled"
    final = next(f for f in frames if is_final(f, request_id))
    assert final["payload"]["status"] == "cancelled"
    assert final["payload"]["runId"] == ack["runId"]
    streamed = "".join(e.get("text", "") for e in events if e["type"] == "agent-stream")
    partial = events[-1]["partialText"]
    assert streamed and partial.startswith(streamed)
    assert len(partial) < len("".join(f"t{i} " for i in range(100)))
    assert final["payload"]["result"]["text"] == partial
    run = await Run.objects.aget(pk=ack["runId"])
    assert run.status == RunStatus.CANCELLED and run.ended_at is not None
    assert await messages_of(ack["sessionKey"]) == [("user", "/stream 100"), ("assistant", partial)]
    # nothing after the terminal event for this run
    await quiet(c, 0.3, lambda f: f.get("event") == "agent")


async def stop_run(c: Client, request_id: str, method: str, params: dict):
    """Send ``method`` (a cancel) while the run streams; (its reply, frames up to the final)."""
    rid = f"{method}-1"
    await c.send({"type": "req", "id": rid, "method": method, "params": params})
    rest = await read_until(
        c,
        lambda fs: any(f.get("id") == rid for f in fs) and any(is_final(f, request_id) for f in fs),
    )
    return next(f for f in rest if f.get("id") == rid), rest


async def test_agent_cancel_mid_stream(clients, slow_agent):
    c = clients()
    await c.handshake()
    request_id, ack, frames = await start_streaming(
        c, {"message": "/stream 100", "agentId": "slowpoke"}
    )
    cancel, rest = await stop_run(c, request_id, "agent.cancel", {"runId": ack["runId"]})
    assert cancel["ok"] is True
    assert cancel["payload"]["runId"] == ack["runId"] and cancel["payload"]["cancelled"] is True
    await _assert_cancelled(c, request_id, ack, frames, rest)
    again = await c.call("agent.cancel", {"runId": ack["runId"]})
    assert again["payload"]["cancelled"] is False
    waited = await c.call("agent.wait", {"runId": ack["runId"]})
    assert waited["payload"]["status"] == "cancelled"


async def test_chat_abort_by_session_key(clients, slow_agent):
    c = clients()
    await c.handshake()
    request_id, ack, frames = await start_streaming(
        c, {"message": "/stream 100", "agentId": "slowpoke"}
    )
    abort, rest = await stop_run(c, request_id, "chat.abort", {"sessionKey": ack["sessionKey"]})
    assert abort["payload"] == {"sessionKey": ack["sessionKey"], "aborted": [ack["runId"]]}
    await _assert_cancelled(c, request_id, ack, frames, rest)
    nothing_left = await c.call("chat.abort", {"sessionKey": ack["sessionKey"]})
    assert nothing_left["payload"]["aborted"] == []


async def test_cancel_unknown_run_is_not_found(clients, main_agent):
    c = clients()
    await c.handshake()
    res = await c.call("agent.cancel", {"runId": "nope"})
    assert res["ok"] is False and res["error"]["code"] == "NOT_FOUND"
    res = await c.call("agent.wait", {"runId": "nope"})
    assert res["ok"] is False and res["error"]["code"] == "NOT_FOUND"


# --------------------------------------------------------------------------------------
# one run per session at a time
# --------------------------------------------------------------------------------------
async def test_runs_on_one_session_queue_in_order(clients, slow_agent):
    c = clients()
    await c.handshake()
    params = {"agentId": "slowpoke"}
    ids = [await send_agent(c, {**params, "message": f"/stream {n}"}) for n in (6, 2, 2)]
    frames = await read_until(c, lambda fs: all(any(is_final(f, i) for f in fs) for i in ids))
    acks = [next(f for f in frames if is_ack(f, i))["payload"] for i in ids]
    assert [a.get("queuePosition", 0) for a in acks] == [0, 1, 2]
    assert len({a["sessionKey"] for a in acks}) == 1
    agent_frames = [f["payload"] for f in frames if f.get("event") == "agent"]
    for a in acks:
        check_run_events(
            run_events(frames, a["runId"]),
            run_id=a["runId"],
            session_key=a["sessionKey"],
            agent_id="slowpoke",
        )
    # strictly one after the other: run n+1 starts only after run n's terminal event
    order = [(e["runId"], e["type"]) for e in agent_frames]
    for first, second in itertools.pairwise(acks):
        end_first = max(
            i for i, (r, t) in enumerate(order) if r == first["runId"] and t in TERMINAL_TYPES
        )
        start_second = order.index((second["runId"], "agent-start"))
        assert end_first < start_second, order
    finals = [next(f for f in frames if is_final(f, i))["payload"] for i in ids]
    assert [f["status"] for f in finals] == ["ok", "ok", "ok"]
    runs = [await Run.objects.aget(pk=a["runId"]) for a in acks]
    assert runs[0].ended_at <= runs[1].started_at and runs[1].ended_at <= runs[2].started_at
    # every prompt and every answer is persisted once, each answer after its prompt
    rows = [m async for m in Message.objects.filter(run__isnull=False).order_by("position")]
    for a, n in zip(acks, (6, 2, 2), strict=True):
        mine = [(m.role, m.content) for m in rows if m.run_id == a["runId"]]
        assert mine == [
            ("user", f"/stream {n}"),
            ("assistant", "".join(f"t{i} " for i in range(n))),
        ]


async def test_a_queued_run_starts_as_soon_as_the_run_ahead_ends(clients, slow_agent, monkeypatch):
    """A queued run asks the database less and less often, but the run ahead ending in this
    process wakes it at once (here the asks are 3 s apart; it starts well before)."""
    monkeypatch.setattr(execute, "TURN_POLL_SECONDS", 3.0)
    monkeypatch.setattr(execute, "TURN_POLL_MAX_SECONDS", 3.0)
    c = clients()
    await c.handshake()
    params = {"agentId": "slowpoke"}
    ids = [await send_agent(c, {**params, "message": f"/stream {n}"}) for n in (10, 1)]
    frames = await read_until(c, lambda fs: all(any(is_final(f, i) for f in fs) for i in ids))
    acks = [next(f for f in frames if is_ack(f, i))["payload"] for i in ids]
    runs = [await Run.objects.aget(pk=a["runId"]) for a in acks]
    gap = (runs[1].started_at - runs[0].ended_at).total_seconds()
    assert 0 <= gap < 1.0, gap


async def test_queue_false_while_busy_is_a_conflict(clients, slow_agent):
    c = clients()
    await c.handshake()
    _, ack, _ = await start_streaming(
        c, {"message": "/stream 100", "agentId": "slowpoke"}, tokens=1
    )
    res = await c.call(
        "agent", {"message": "me too", "sessionKey": ack["sessionKey"], "queue": False}
    )
    assert res["ok"] is False and res["error"]["code"] == "CONFLICT"
    assert res["error"].get("retryable") is True
    assert await Run.objects.filter(session__key=ack["sessionKey"]).acount() == 1
    # another session is not busy
    other = await c.call("agent", {"message": "hi", "agentId": "main", "queue": False})
    assert other["ok"] is False and other["error"]["code"] == "NOT_FOUND"  # no agent 'main'
    free = await c.call(
        "agent", {"message": "free", "sessionKey": "agent:slowpoke:other", "queue": False}
    )
    assert free["ok"] is True and free["payload"]["status"] == "accepted"
    await c.call("chat.abort", {"sessionKey": ack["sessionKey"]})
    await c.call("chat.abort", {"sessionKey": "agent:slowpoke:other"})


async def test_cancel_a_queued_run(clients, slow_agent):
    c = clients()
    await c.handshake()
    first_id, first, _ = await start_streaming(
        c, {"message": "/stream 100", "agentId": "slowpoke"}, tokens=1
    )
    second_id = await send_agent(c, {"message": "/stream 3", "sessionKey": first["sessionKey"]})
    frames = await read_until(c, lambda fs: any(is_ack(f, second_id) for f in fs))
    second = next(f for f in frames if is_ack(f, second_id))["payload"]
    assert second["queuePosition"] == 1
    res = await c.call("agent.cancel", {"runId": second["runId"]})
    assert res["payload"]["cancelled"] is True
    frames = await read_until(c, lambda fs: any(is_final(f, second_id) for f in fs))
    events = run_events(frames, second["runId"])
    assert [e["type"] for e in events] == ["agent-cancelled"]
    check_run_events(
        events,
        run_id=second["runId"],
        session_key=first["sessionKey"],
        agent_id="slowpoke",
        started=False,
    )
    assert next(f for f in frames if is_final(f, second_id))["payload"]["status"] == "cancelled"
    await c.call("agent.cancel", {"runId": first["runId"]})
    await read_until(c, lambda fs: any(is_final(f, first_id) for f in fs))
    statuses = {r.id: r.status async for r in Run.objects.all()}
    assert statuses == {first["runId"]: RunStatus.CANCELLED, second["runId"]: RunStatus.CANCELLED}


# --------------------------------------------------------------------------------------
# timeout and failure
# --------------------------------------------------------------------------------------
async def test_timeout_ends_in_agent_timeout(clients, slow_agent):
    c = clients()
    await c.handshake()
    ack, events, final, _ = await agent_call(
        c, {"message": "/stream 100", "agentId": "slowpoke", "timeout": 0.2}, timeout=SLOW_FRAME
    )
    run_id = ack["payload"]["runId"]
    check_run_events(events, run_id=run_id, session_key="agent:slowpoke:main", agent_id="slowpoke")
    last = events[-1]
    assert last["type"] == "agent-error" and last["code"] == "AGENT_TIMEOUT"
    assert "timed out" in last["error"]
    assert final["payload"]["status"] == "error"
    assert final["payload"]["error"]["code"] == "AGENT_TIMEOUT"
    run = await Run.objects.aget(pk=run_id)
    assert run.status == RunStatus.TIMEOUT
    waited = await c.call("agent.wait", {"runId": run_id})
    assert waited["payload"]["status"] == "error"


async def test_model_failure_ends_in_agent_error(clients, main_agent):
    c = clients()
    await c.handshake()
    ack, events, final, _ = await agent_call(c, {"message": "/fail boom"})
    run_id = ack["payload"]["runId"]
    check_run_events(events, run_id=run_id, session_key="agent:main:main", agent_id="main")
    assert [e["type"] for e in events] == ["agent-start", "agent-error"]
    assert "boom" in events[-1]["error"]
    assert final["payload"]["status"] == "error"
    assert "boom" in final["payload"]["error"]["message"]
    run = await Run.objects.aget(pk=run_id)
    assert run.status == RunStatus.ERROR and "boom" in run.error
    # no assistant message for a failed run; the session still works
    assert await messages_of("agent:main:main") == [("user", "/fail boom")]
    _, _, ok, _ = await agent_call(c, {"message": "still there?"})
    assert ok["payload"]["status"] == "ok"


async def test_bad_model_ends_in_agent_error(clients, backend):
    await acreate_agent("broken", model="nope:thing")
    c = clients()
    await c.handshake()
    _, events, final, _ = await agent_call(c, {"message": "hi", "agentId": "broken"})
    assert events[-1]["type"] == "agent-error"
    assert "unknown model provider 'nope'" in events[-1]["error"]
    assert final["payload"]["status"] == "error"


# --------------------------------------------------------------------------------------
# idempotency
# --------------------------------------------------------------------------------------
async def test_same_idempotency_key_while_running_is_one_run(clients, slow_agent):
    c = clients()
    await c.handshake()
    params = {"message": "/stream 6", "agentId": "slowpoke", "idempotencyKey": "same-key"}
    first_id = await send_agent(c, params)
    second_id = await send_agent(c, params)
    frames = await read_until(
        c, lambda fs: all(any(is_final(f, i) for f in fs) for i in (first_id, second_id))
    )
    first = next(f for f in frames if is_ack(f, first_id))["payload"]
    second = next(f for f in frames if is_ack(f, second_id))["payload"]
    assert second["runId"] == first["runId"]
    assert second["duplicate"] is True and "duplicate" not in first
    finals = [next(f for f in frames if is_final(f, i))["payload"] for i in (first_id, second_id)]
    assert finals[0] == finals[1] and finals[0]["status"] == "ok"
    assert await Run.objects.acount() == 1
    events = run_events(frames, first["runId"])
    check_run_events(
        events, run_id=first["runId"], session_key=first["sessionKey"], agent_id="slowpoke"
    )
    assert await messages_of(first["sessionKey"]) == [
        ("user", "/stream 6"),
        ("assistant", "".join(f"t{i} " for i in range(6))),
    ]


async def test_retry_after_completion_gets_ack_and_final_at_once(clients, main_agent):
    c = clients()
    await c.handshake()
    params = {"message": "once only", "idempotencyKey": "done-key"}
    ack, _, final, _ = await agent_call(c, params)
    retry_id = await send_agent(c, params)
    frames = await read_until(c, lambda fs: any(is_final(f, retry_id) for f in fs), timeout=3)
    retry_ack = next(f for f in frames if is_ack(f, retry_id))["payload"]
    assert retry_ack["runId"] == ack["payload"]["runId"] and retry_ack["duplicate"] is True
    retry_final = next(f for f in frames if is_final(f, retry_id))
    assert retry_final["payload"] == final["payload"]
    assert not [f for f in frames if f.get("event") == "agent"], "a retry must not run again"
    assert await Run.objects.acount() == 1
    assert len(await messages_of("agent:main:main")) == 2

    # across a reconnect: a new connection with the same key gets the same answer
    await c.close()
    c2 = clients()
    await c2.handshake()
    retry2 = await send_agent(c2, params)
    frames = await read_until(c2, lambda fs: any(is_final(f, retry2) for f in fs), timeout=3)
    assert (
        next(f for f in frames if is_ack(f, retry2))["payload"]["runId"]
        == (ack["payload"]["runId"])
    )
    assert next(f for f in frames if is_final(f, retry2))["payload"] == final["payload"]
    assert await Run.objects.acount() == 1


async def test_retry_after_reconnect_while_running(clients, slow_agent):
    c = clients()
    await c.handshake()
    params = {"message": "/stream 8", "agentId": "slowpoke", "idempotencyKey": "reconnect-key"}
    _, ack, _ = await start_streaming(c, params, tokens=1)
    await c.close()
    c2 = clients()
    await c2.handshake()
    retry = await send_agent(c2, params)
    frames = await read_until(c2, lambda fs: any(is_final(f, retry) for f in fs))
    retry_ack = next(f for f in frames if is_ack(f, retry))["payload"]
    assert retry_ack["runId"] == ack["runId"] and retry_ack["duplicate"] is True
    final = next(f for f in frames if is_final(f, retry))["payload"]
    assert final["status"] == "ok"
    assert final["result"]["text"] == "".join(f"t{i} " for i in range(8))
    # the retrying connection follows the run's remaining events, ending with its terminal
    events = run_events(frames, ack["runId"])
    assert events and events[-1]["type"] == "agent-complete"
    assert await Run.objects.acount() == 1


async def test_different_keys_are_different_runs(clients, main_agent):
    c = clients()
    await c.handshake()
    a, _, _, _ = await agent_call(c, {"message": "x", "idempotencyKey": "k-a"})
    b, _, _, _ = await agent_call(c, {"message": "x", "idempotencyKey": "k-b"})
    n, _, _, _ = await agent_call(c, {"message": "x"})
    m, _, _, _ = await agent_call(c, {"message": "x"})
    assert len({r["payload"]["runId"] for r in (a, b, n, m)}) == 4
    assert await Run.objects.acount() == 4


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
async def test_unknown_agent_is_not_found(clients, main_agent):
    c = clients()
    await c.handshake()
    res = await c.call("agent", {"message": "hi", "agentId": "ghost"})
    assert res["ok"] is False and res["error"]["code"] == "NOT_FOUND"
    assert "ghost" in res["error"]["message"]
    await quiet(c, 0.2, lambda f: f.get("event") == "agent" or f.get("type") == "res")
    assert await Run.objects.acount() == 0


async def test_agent_param_errors(clients, main_agent):
    c = clients()
    await c.handshake()
    conflict = await c.call(
        "agent", {"message": "hi", "agentId": "main", "sessionKey": "agent:other:main"}
    )
    assert conflict["error"]["code"] == "CONFLICT"
    for params in ({"message": ""}, {"message": "hi", "timeout": 0}, {"message": "x", "bogus": 1}):
        res = await c.call("agent", params)
        assert res["ok"] is False and res["error"]["code"] == "INVALID_REQUEST", (params, res)
    blank = await c.call("agent", {"message": "   "})
    assert blank["error"]["code"] == "INVALID_REQUEST"
    # accepted and ignored: deliver, thinking, label, attachments, execution
    ignored = await c.call(
        "agent",
        {
            "message": "hi",
            "deliver": False,
            "thinking": "low",
            "label": "l",
            "attachments": [],
            "execution": {"workspace": "/work/space", "configDir": ".wingman"},
        },
    )
    assert ignored["ok"] is True, ignored
    await read_until(c, lambda fs: any(is_final(f, ignored["id"]) for f in fs))


async def test_disabled_agent_is_forbidden(clients, backend):
    await acreate_agent("off", enabled=False)
    c = clients()
    await c.handshake()
    res = await c.call("agent", {"message": "hi", "agentId": "off"})
    assert res["ok"] is False and res["error"]["code"] == "FORBIDDEN"


# --------------------------------------------------------------------------------------
# sessions
# --------------------------------------------------------------------------------------
async def test_sessions_create_list_get_rename_delete(clients, main_agent):
    await acreate_agent("support")
    c = clients()
    await c.handshake()
    created = await c.call("sessions.create", {"agentId": "support", "name": "  Billing  "})
    s = created["payload"]
    assert s["sessionKey"].startswith("agent:support:") and s["agentId"] == "support"
    assert s["name"] == "Billing" and s["messageCount"] == 0
    default = (await c.call("sessions.create", {}))["payload"]
    assert default["agentId"] == "main" and default["sessionKey"] != s["sessionKey"]

    listed = (await c.call("sessions.list", {}))["payload"]["sessions"]
    assert {x["sessionKey"] for x in listed} == {s["sessionKey"], default["sessionKey"]}
    only = (await c.call("sessions.list", {"agentId": "support"}))["payload"]["sessions"]
    assert [x["sessionKey"] for x in only] == [s["sessionKey"]]

    got = (await c.call("sessions.get", {"sessionKey": s["sessionKey"]}))["payload"]
    assert got["name"] == "Billing"
    renamed = await c.call("sessions.rename", {"sessionKey": s["sessionKey"], "name": "Invoices"})
    assert renamed["payload"]["name"] == "Invoices"
    assert (await c.call("sessions.get", {"sessionKey": s["sessionKey"]}))["payload"][
        "name"
    ] == "Invoices"

    # a run in the created session belongs to it and to its agent
    ack, _, final, _ = await agent_call(c, {"message": "in session", "sessionKey": s["sessionKey"]})
    assert ack["payload"]["agentId"] == "support"
    assert final["payload"]["status"] == "ok"
    got = (await c.call("sessions.get", {"sessionKey": s["sessionKey"]}))["payload"]
    assert got["messageCount"] == 2

    deleted = await c.call("sessions.delete", {"sessionKey": s["sessionKey"]})
    assert deleted["payload"] == {"sessionKey": s["sessionKey"], "deleted": True}
    for method in ("sessions.get", "sessions.delete", "chat.history", "sessions.subscribe"):
        res = await c.call(method, {"sessionKey": s["sessionKey"]})
        assert res["ok"] is False and res["error"]["code"] == "NOT_FOUND", (method, res)
    rename = await c.call("sessions.rename", {"sessionKey": s["sessionKey"], "name": "x"})
    assert rename["error"]["code"] == "NOT_FOUND"
    assert await Message.objects.filter(session__key=s["sessionKey"]).acount() == 0
    missing = await c.call("sessions.create", {"agentId": "ghost"})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_subscriber_sees_the_run_and_the_user_message(clients, main_agent):
    requester, watcher = clients(), clients(client=("127.0.0.1", 50001))
    await requester.handshake()
    await watcher.handshake()
    key = (await requester.call("sessions.create", {"name": "shared"}))["payload"]["sessionKey"]
    sub = await watcher.call("sessions.subscribe", {"sessionKey": key})
    assert sub["payload"] == {"sessionKey": key, "subscribed": True}

    ack, events, final, req_frames = await agent_call(
        requester, {"message": "watch this", "sessionKey": key}
    )
    assert final["payload"]["status"] == "ok"
    run_id = ack["payload"]["runId"]
    assert not [f for f in req_frames if f.get("event") == "session.message"], (
        "the requester must not get its own message back"
    )
    seen = await read_until(
        watcher,
        lambda fs: any(
            f.get("event") == "agent" and f["payload"]["type"] in TERMINAL_TYPES for f in fs
        ),
        timeout=5,
    )
    watched = run_events(seen, run_id)
    assert watched == events, "the subscriber sees exactly the requester's run events"
    notes = [f["payload"] for f in seen if f.get("event") == "session.message"]
    assert notes == [
        {
            "sessionKey": key,
            "message": {"role": "user", "content": "watch this", "runId": run_id},
        }
    ]
    assert not [f for f in seen if f.get("type") == "res"]

    unsub = await watcher.call("sessions.unsubscribe", {"sessionKey": key})
    assert unsub["payload"] == {"sessionKey": key, "subscribed": False}
    await agent_call(requester, {"message": "not for you", "sessionKey": key})
    await quiet(watcher, 0.3, lambda f: f.get("event") in ("agent", "session.message"))


async def test_set_folder_inside_fs_roots_and_outside(clients, main_agent, tmp_path):
    root = settings.WINGMAN.fs_roots[0].expanduser().resolve()
    inside = root / f"project-{uuid.uuid4().hex[:6]}"
    inside.mkdir(parents=True)
    (inside / "plan.md").write_text("p")
    c = clients()
    await c.handshake()
    await acreate_agent("coder", tools=["list_files"])
    key = (await c.call("sessions.create", {"agentId": "coder"}))["payload"]["sessionKey"]

    ok = await c.call("sessions.setFolder", {"sessionKey": key, "workingFolder": str(inside)})
    assert ok["ok"] is True and ok["payload"]["workingFolder"] == str(inside)
    _, events, _, _ = await agent_call(c, {"message": "/tool list_files {}", "sessionKey": key})
    tool_end = next(e for e in events if e["type"] == "tool-end")
    assert tool_end["toolOutput"] == "plan.md"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    bad = await c.call("sessions.setFolder", {"sessionKey": key, "workingFolder": str(outside)})
    assert bad["ok"] is False and bad["error"]["code"] == "FORBIDDEN"
    escape = await c.call(
        "sessions.setFolder", {"sessionKey": key, "workingFolder": str(inside / ".." / "..")}
    )
    assert escape["error"]["code"] == "FORBIDDEN"
    link = inside / "out-link"
    link.symlink_to(outside, target_is_directory=True)
    via_link = await c.call("sessions.setFolder", {"sessionKey": key, "workingFolder": str(link)})
    assert via_link["error"]["code"] == "FORBIDDEN"
    relative = await c.call("sessions.setFolder", {"sessionKey": key, "workingFolder": "rel/dir"})
    assert relative["error"]["code"] == "INVALID_REQUEST"
    got = (await c.call("sessions.get", {"sessionKey": key}))["payload"]
    assert got["workingFolder"] == str(inside)
    cleared = await c.call("sessions.setFolder", {"sessionKey": key, "workingFolder": ""})
    assert cleared["payload"]["workingFolder"] is None
    created = await c.call("sessions.create", {"agentId": "coder", "workingFolder": str(outside)})
    assert created["error"]["code"] == "FORBIDDEN"


async def test_agents_list(clients, main_agent):
    await acreate_agent("support", model="wingman:slow", tools=["read_file"])
    c = clients()
    await c.handshake()
    res = await c.call("agents.list")
    agents = {a["id"]: a for a in res["payload"]["agents"]}
    assert agents["main"]["default"] is True and agents["main"]["name"] == "Main"
    assert agents["support"] == {
        "id": "support",
        "name": "support",
        "model": "wingman:slow",
        "default": False,
        "enabled": True,
        "tools": ["read_file"],
    }
