"""The real ``openai:`` provider (langchain-openai + the OpenAI SDK) against a local fake
OpenAI-compatible server that streams real SSE ``chat.completion.chunk`` frames."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from agents.models import Message, Run, RunStatus
from agents.runtime.runner import AgentSpec, run_turn
from tests.agents.conftest import acreate_agent, agent_call, check_run_events
from tests.agents.fake_openai import TOOL_CALL_ID, FakeOpenAI


@pytest.fixture
def fake_openai(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with FakeOpenAI(api_key="test") as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


class Recorder:
    def __init__(self) -> None:
        self.steps: list[dict] = []

    async def __call__(self, step: dict) -> None:
        json.dumps(step)
        self.steps.append(step)

    def of(self, kind: str) -> list[dict]:
        return [s for s in self.steps if s["type"] == kind]


async def turn(prompt, folder, *, tools=(), history=(), system=""):
    rec = Recorder()
    text = await run_turn(
        AgentSpec(agent_id="oa", model="openai:gpt-test", tools=list(tools), system_prompt=system),
        history=list(history),
        prompt=prompt,
        working_folder=folder,
        emit=rec,
    )
    return text, rec


# --------------------------------------------------------------------------------------
# the fake server itself speaks the OpenAI wire format
# --------------------------------------------------------------------------------------
def test_fake_server_streams_sse_frames(fake_openai):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", fake_openai.port, timeout=5)
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    conn.request(
        "POST",
        f"{fake_openai.prefix}/v1/chat/completions",
        json.dumps(body),
        {"Authorization": "Bearer test", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    raw = resp.read().decode()
    conn.close()
    frames = [f for f in raw.split("\n\n") if f]
    assert all(f.startswith("data: ") for f in frames), frames
    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(f[6:]) for f in frames[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Echo: a b"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


# --------------------------------------------------------------------------------------
# run_turn with the real provider
# --------------------------------------------------------------------------------------
async def test_openai_provider_streams_text(fake_openai, tmp_path):
    text, rec = await turn("hello fake world", tmp_path, system="Be brief.")
    assert text == "Echo: hello fake world"
    deltas = [s["text"] for s in rec.of("agent-stream") if "text" in s]
    assert len(deltas) >= 3, deltas  # token by token, not one blob
    assert "".join(deltas) == text
    for step in rec.of("agent-stream"):
        assert step["chunk"]["event"] == "on_chat_model_stream"
    [request] = fake_openai.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer test"
    body = request["body"]
    assert body["model"] == "gpt-test" and body["stream"] is True
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][-1] == {"role": "user", "content": "hello fake world"}
    assert "tools" not in body


async def test_openai_provider_tool_call_round_trip(fake_openai, tmp_path):
    (tmp_path / "report.md").write_text("# r")
    (tmp_path / "data").mkdir()
    text, rec = await turn("use list_files please", tmp_path, tools=["list_files"])
    [start], [end] = rec.of("tool-start"), rec.of("tool-end")
    assert start["toolName"] == end["toolName"] == "list_files"
    assert start["toolInput"] == {"path": "."}
    assert end["toolOutput"] == "data/\nreport.md"
    assert text == "The tool said: data/\nreport.md"
    kinds = [s["type"] for s in rec.steps]
    assert kinds.index("tool-start") < kinds.index("tool-end")
    first, second = fake_openai.chat_requests
    assert [t["function"]["name"] for t in first["tools"]] == ["list_files"]
    tool_msg = second["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == TOOL_CALL_ID
    assert tool_msg["content"] == "data/\nreport.md"
    call_msg = second["messages"][-2]
    assert call_msg["role"] == "assistant"
    assert call_msg["tool_calls"][0]["function"]["name"] == "list_files"
    assert json.loads(call_msg["tool_calls"][0]["function"]["arguments"]) == {"path": "."}


async def test_openai_provider_tool_not_offered_is_not_called(fake_openai, tmp_path):
    text, rec = await turn("use list_files please", tmp_path)
    assert not rec.of("tool-start")
    assert text == "Echo: use list_files please"
    assert "tools" not in fake_openai.chat_requests[0]


async def test_openai_provider_gets_the_history(fake_openai, tmp_path):
    history = [("user", "first question"), ("assistant", "first answer")]
    await turn("second question", tmp_path, history=history)
    messages = fake_openai.chat_requests[0]["messages"]
    assert messages == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]


async def test_openai_bad_api_key_is_an_error(fake_openai, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with pytest.raises(Exception, match=r"401|bad api key|[Aa]uthentication"):
        await turn("hi", tmp_path)


# --------------------------------------------------------------------------------------
# through the gateway: the run service end to end
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["memory"], indirect=True)
@pytest.mark.django_db(transaction=True)
async def test_openai_agent_through_the_gateway(fake_openai, clients):
    agent = await acreate_agent("oa", model="openai:gpt-test", tools=["list_files"])
    outputs = settings.WINGMAN.state_dir / "outputs" / agent.id
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "hello.txt").write_text("hi")
    c = clients()
    await c.handshake()

    ack, events, final, _ = await agent_call(
        c, {"message": "use list_files now", "agentId": "oa", "idempotencyKey": "oa-1"}
    )
    assert ack["ok"] is True, ack
    run_id, key = ack["payload"]["runId"], ack["payload"]["sessionKey"]
    assert key == "agent:oa:main"
    check_run_events(events, run_id=run_id, session_key=key, agent_id="oa")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "agent-start" and kinds[-1] == "agent-complete"
    assert "tool-start" in kinds and "tool-end" in kinds
    tool_end = next(e for e in events if e["type"] == "tool-end")
    assert tool_end["toolName"] == "list_files" and tool_end["toolOutput"] == "hello.txt"
    streamed = "".join(e.get("text", "") for e in events if e["type"] == "agent-stream")
    assert streamed == "The tool said: hello.txt"
    assert final["payload"]["status"] == "ok"
    assert final["payload"]["result"]["text"] == "The tool said: hello.txt"
    assert events[-1]["result"]["text"] == "The tool said: hello.txt"

    rows = [
        (m.role, m.content)
        async for m in Message.objects.filter(session__key=key).order_by("position")
    ]
    assert rows == [("user", "use list_files now"), ("assistant", "The tool said: hello.txt")]
    run = await Run.objects.aget(pk=run_id)
    assert run.status == RunStatus.OK and run.result == "The tool said: hello.txt"

    # second turn: the model gets the conversation so far from the Message rows
    _, _, final2, _ = await agent_call(
        c, {"message": "and again?", "sessionKey": key, "idempotencyKey": "oa-2"}
    )
    assert final2["payload"]["status"] == "ok", final2
    assert final2["payload"]["result"]["text"] == "Echo: and again?"
    last = fake_openai.chat_requests[-1]["messages"]
    assert last == [
        {"role": "user", "content": "use list_files now"},
        {"role": "assistant", "content": "The tool said: hello.txt"},
        {"role": "user", "content": "and again?"},
    ]
    history = await c.call("chat.history", {"sessionKey": key})
    assert [(m["role"], m["content"]) for m in history["payload"]["messages"]] == [
        ("user", "use list_files now"),
        ("assistant", "The tool said: hello.txt"),
        ("user", "and again?"),
        ("assistant", "Echo: and again?"),
    ]


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
@pytest.mark.django_db(transaction=True)
async def test_openai_agent_without_a_key_ends_in_agent_error(clients, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    await acreate_agent("oa", model="openai:gpt-test")
    c = clients()
    await c.handshake()
    ack, events, final, _ = await agent_call(c, {"message": "hi", "agentId": "oa"})
    assert ack["ok"] is True
    check_run_events(
        events, run_id=ack["payload"]["runId"], session_key="agent:oa:main", agent_id="oa"
    )
    assert events[-1]["type"] == "agent-error"
    assert "OPENAI_API_KEY" in events[-1]["error"]
    assert final["payload"]["status"] == "error"
    assert "OPENAI_API_KEY" in final["payload"]["error"]["message"]
    run = await Run.objects.aget(pk=ack["payload"]["runId"])
    assert run.status == RunStatus.ERROR


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
@pytest.mark.django_db(transaction=True)
async def test_a_queued_turn_sees_the_answer_of_the_turn_before_it(fake_openai, clients):
    """Two prompts sent back to back on one session: the second runs after the first ended,
    so the model must get the first answer before the second prompt (not two user
    messages in a row)."""
    await acreate_agent("oa", model="openai:gpt-test")
    c = clients()
    await c.handshake()
    for rid, message in (("q-1", "[slow] first"), ("q-2", "second")):
        await c.send({"type": "req", "id": rid, "method": "agent", "params": {"message": message}})
    finals: dict[str, dict] = {}
    for _ in range(500):
        frame = await c.recv(5)
        if frame.get("type") == "res" and frame["payload"].get("status") != "accepted":
            finals[frame["id"]] = frame["payload"]
            if len(finals) == 2:
                break
    assert finals["q-1"]["status"] == finals["q-2"]["status"] == "ok", finals
    first, second = fake_openai.chat_requests
    assert first["messages"] == [{"role": "user", "content": "[slow] first"}]
    assert second["messages"] == [
        {"role": "user", "content": "[slow] first"},
        {"role": "assistant", "content": "Echo: [slow] first"},
        {"role": "user", "content": "second"},
    ]
