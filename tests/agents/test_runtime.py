"""The agent runtime without a socket: the offline model, the file tools, model providers
and ``run_turn``'s step events."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from langchain_core.messages import AIMessageChunk

from agents.runtime import offline
from agents.runtime.offline import OfflineChatModel, OfflineModelError
from agents.runtime.providers import ModelError, resolve_model
from agents.runtime.runner import AgentSpec, json_safe, run_turn
from agents.runtime.tools import BUILTIN_TOOLS, OutsideFolder, build_tools, confine


class Recorder:
    """An ``emit`` that keeps every step (and checks each is JSON-serialisable)."""

    def __init__(self) -> None:
        self.steps: list[dict] = []

    async def __call__(self, step: dict) -> None:
        json.dumps(step)  # what the gateway publishes must serialise as is
        self.steps.append(step)

    def of(self, kind: str) -> list[dict]:
        return [s for s in self.steps if s["type"] == kind]

    @property
    def text(self) -> str:
        return "".join(s.get("text", "") for s in self.of("agent-stream"))


async def turn(prompt: str, folder: Path, *, model="wingman:echo", tools=(), history=()):
    rec = Recorder()
    text = await run_turn(
        AgentSpec(agent_id="tester", model=model, tools=list(tools)),
        history=list(history),
        prompt=prompt,
        working_folder=folder,
        emit=rec,
    )
    return text, rec


# --------------------------------------------------------------------------------------
# the offline model
# --------------------------------------------------------------------------------------
async def test_echo_streams_token_by_token_through_astream_events():
    model = offline.offline_model("echo")
    events = [
        e
        async for e in model.astream_events("hello brave new world", version="v2")
        if e["event"] == "on_chat_model_stream"
    ]
    tokens = [e["data"]["chunk"].content for e in events]
    # LangChain may close the stream with one empty chunk
    assert [t for t in tokens if t] == ["You ", "said: ", "hello ", "brave ", "new ", "world"]
    assert len(tokens) - len([t for t in tokens if t]) <= 1
    assert all(isinstance(e["data"]["chunk"], AIMessageChunk) for e in events)


async def test_echo_astream_yields_one_chunk_per_word():
    model = offline.offline_model("echo")
    chunks = [c.content async for c in model.astream("a b c") if c.content]
    assert chunks == ["You ", "said: ", "a ", "b ", "c"]
    assert model.invoke("a b c").content == "You said: a b c"


def test_slow_model_has_a_token_delay_and_unknown_names_fail():
    assert offline.offline_model("slow").token_delay == pytest.approx(0.05)
    assert offline.offline_model("echo").token_delay == 0
    with pytest.raises(KeyError):
        offline.offline_model("fast")


async def test_stream_command_streams_n_tokens():
    model = offline.offline_model("echo")
    chunks = [c.content async for c in model.astream("/stream 5") if c.content]
    assert chunks == ["t0 ", "t1 ", "t2 ", "t3 ", "t4 "]


async def test_fail_command_raises():
    model = offline.offline_model("echo")
    with pytest.raises(OfflineModelError, match="boom x"):
        await model.ainvoke("/fail boom x")
    with pytest.raises(OfflineModelError, match="boom"):
        async for _ in model.astream("/fail boom"):
            pass


def test_tool_command_calls_only_an_allowed_tool(tmp_path):
    tools = build_tools(["list_files"], tmp_path)
    model = OfflineChatModel().bind_tools(tools)
    message = model.invoke('/tool list_files {"path": "."}')
    assert [(c["name"], c["args"]) for c in message.tool_calls] == [("list_files", {"path": "."})]
    refused = model.invoke("/tool read_file {}")
    assert refused.tool_calls == []
    assert "cannot use the tool 'read_file'" in refused.content
    assert "list_files" in refused.content


async def test_run_turn_with_an_allowed_tool_emits_tool_start_and_end(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    text, rec = await turn("/tool list_files {}", tmp_path, tools=["list_files"])
    kinds = [s["type"] for s in rec.steps if s["type"] != "agent-stream"]
    assert kinds == ["tool-start", "tool-end"]
    start, end = rec.of("tool-start")[0], rec.of("tool-end")[0]
    assert start["toolName"] == end["toolName"] == "list_files"
    assert start["toolInput"] == {}
    assert end["toolOutput"] == "notes.txt\nsub/"
    assert text == "Tool list_files returned: notes.txt\nsub/"
    assert rec.text == text
    # the stream events come before and after the tool, in order
    order = [s["type"] for s in rec.steps]
    assert order.index("tool-start") < order.index("tool-end")
    assert order[-1] == "agent-stream"


async def test_run_turn_refuses_a_tool_that_is_not_allowed(tmp_path):
    (tmp_path / "secret.txt").write_text("top secret")
    text, rec = await turn('/tool read_file {"path": "secret.txt"}', tmp_path, tools=["list_files"])
    assert not rec.of("tool-start") and not rec.of("tool-end")
    assert "cannot use the tool 'read_file'" in text
    assert "top secret" not in json.dumps(rec.steps)


async def test_run_turn_with_no_tools_allowed(tmp_path):
    text, rec = await turn("/tool list_files {}", tmp_path)
    assert not rec.of("tool-start")
    assert "allowed: none" in text


async def test_run_turn_fail_raises(tmp_path):
    with pytest.raises(OfflineModelError, match="x"):
        await turn("/fail x", tmp_path)


async def test_run_turn_stream_events_are_json_safe_with_text(tmp_path):
    text, rec = await turn("hello there", tmp_path)
    assert text == "You said: hello there"
    streams = rec.of("agent-stream")
    with_text = [s for s in streams if "text" in s]
    assert [s["text"] for s in with_text] == ["You ", "said: ", "hello ", "there"]
    for step in streams:
        chunk = step["chunk"]
        assert chunk["event"] == "on_chat_model_stream"
        json.loads(json.dumps(chunk))
        if "text" in step:
            assert chunk["data"]["chunk"]["content"] == step["text"]
    assert {s["type"] for s in rec.steps} == {"agent-stream"}


def test_json_safe_turns_messages_and_objects_into_plain_data():
    value = {
        "chunk": AIMessageChunk(content="hi"),
        "path": Path("/x"),
        "n": (1, 2.5, None, True),
    }
    safe = json_safe(value)
    json.dumps(safe)
    assert safe["chunk"]["content"] == "hi"
    assert safe["n"] == [1, 2.5, None, True]
    assert isinstance(safe["path"], str)


# --------------------------------------------------------------------------------------
# the file tools: confined to the working folder
# --------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("alpha")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET-OUTSIDE")
    return work


def tool_funcs(folder: Path) -> dict:
    return {name: make(folder) for name, make in BUILTIN_TOOLS.items()}


def test_tools_work_inside_the_folder(folder):
    t = tool_funcs(folder)
    assert t["read_file"]("a.txt") == "alpha"
    assert t["write_file"]("deep/new.txt", "héllo") == "wrote 6 bytes to deep/new.txt"
    assert (folder / "deep" / "new.txt").read_text(encoding="utf-8") == "héllo"
    assert t["read_file"]("deep/../deep/new.txt") == "héllo"
    assert t["list_files"]() == "a.txt\ndeep/"
    assert t["list_files"]("deep") == "new.txt"
    assert t["read_file"]("missing.txt") == "no such file: missing.txt"
    assert t["list_files"]("a.txt") == "not a folder: a.txt"


@pytest.mark.parametrize("path", ["../outside/secret.txt", "..", "deep/../../outside/secret.txt"])
def test_relative_escape_is_refused(folder, path):
    t = tool_funcs(folder)
    with pytest.raises(OutsideFolder):
        t["read_file"](path)
    with pytest.raises(OutsideFolder):
        t["list_files"](path)
    with pytest.raises(OutsideFolder):
        t["write_file"](f"{path}/planted.txt", "x")
    with pytest.raises(OutsideFolder):
        t["write_file"]("../planted.txt", "x")
    assert not list(folder.parent.rglob("planted.txt"))


def test_absolute_path_outside_is_refused(folder):
    secret = folder.parent / "outside" / "secret.txt"
    t = tool_funcs(folder)
    for call in (
        lambda: t["read_file"](str(secret)),
        lambda: t["list_files"](str(secret.parent)),
        lambda: t["list_files"]("/"),
        lambda: t["write_file"](str(secret.parent / "planted.txt"), "x"),
        lambda: t["read_file"]("/etc/passwd"),
    ):
        with pytest.raises(OutsideFolder):
            call()
    assert not (secret.parent / "planted.txt").exists()
    assert secret.read_text() == "SECRET-OUTSIDE"


def test_symlink_pointing_outside_is_refused(folder):
    outside = folder.parent / "outside"
    (folder / "link").symlink_to(outside, target_is_directory=True)
    (folder / "file-link").symlink_to(outside / "secret.txt")
    t = tool_funcs(folder)
    with pytest.raises(OutsideFolder):
        t["read_file"]("link/secret.txt")
    with pytest.raises(OutsideFolder):
        t["read_file"]("file-link")
    with pytest.raises(OutsideFolder):
        t["list_files"]("link")
    with pytest.raises(OutsideFolder):
        t["write_file"]("link/planted.txt", "x")
    with pytest.raises(OutsideFolder):
        t["write_file"]("file-link", "overwritten")
    assert not (outside / "planted.txt").exists()
    assert (outside / "secret.txt").read_text() == "SECRET-OUTSIDE"


def test_symlink_inside_the_folder_is_fine(folder):
    (folder / "alias.txt").symlink_to(folder / "a.txt")
    assert tool_funcs(folder)["read_file"]("alias.txt") == "alpha"


def test_confine_itself(folder):
    assert confine(folder, ".") == folder.resolve()
    assert confine(folder, "x/../a.txt") == (folder / "a.txt").resolve()
    with pytest.raises(OutsideFolder, match="outside the working folder"):
        confine(folder, "../work-sibling")  # a prefix of the folder name is not inside


def test_build_tools_binds_the_folder_and_rejects_unknown_names(folder):
    tools = build_tools(["read_file", "list_files"], folder)
    assert [t.name for t in tools] == ["read_file", "list_files"]
    assert tools[0].invoke({"path": "a.txt"}) == "alpha"
    with pytest.raises(KeyError):
        build_tools(["shell"], folder)


async def test_escaping_tool_call_in_a_run_never_leaks_and_is_reported(folder):
    """The model asks for a file outside: the tool refuses, the model is told, the run
    goes on (a tool-start always has its tool-end)."""
    text, rec = await turn(
        '/tool read_file {"path": "../outside/secret.txt"}', folder, tools=["read_file"]
    )
    assert "SECRET-OUTSIDE" not in json.dumps(rec.steps)
    assert "SECRET-OUTSIDE" not in text
    assert len(rec.of("tool-start")) == len(rec.of("tool-end")) == 1
    assert "outside the working folder" in str(rec.of("tool-end")[0]["toolOutput"])
    assert "outside the working folder" in text


# --------------------------------------------------------------------------------------
# providers
# --------------------------------------------------------------------------------------
@pytest.fixture
def no_keys(monkeypatch):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "WINGMAN_DEFAULT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_offline_models_resolve(no_keys):
    assert isinstance(resolve_model("wingman:echo"), OfflineChatModel)
    slow = resolve_model(" wingman:slow ")
    assert isinstance(slow, OfflineChatModel) and slow.token_delay > 0


def test_empty_spec_is_the_gateway_default(no_keys):
    assert resolve_model("").model_name == "echo"
    assert resolve_model(None).model_name == "echo"
    no_keys.setenv("WINGMAN_DEFAULT_MODEL", "wingman:slow")
    assert resolve_model("").model_name == "slow"


@pytest.mark.parametrize("spec", ["gpt-4o", ":gpt-4o", "openai:", ":"])
def test_malformed_spec(no_keys, spec):
    with pytest.raises(ModelError, match="must look like 'provider:model'"):
        resolve_model(spec)


def test_unknown_provider(no_keys):
    with pytest.raises(ModelError) as err:
        resolve_model("nope:some-model")
    assert "unknown model provider 'nope'" in str(err.value)


def test_unknown_offline_model(no_keys):
    with pytest.raises(ModelError) as err:
        resolve_model("wingman:turbo")
    assert "wingman:echo" in str(err.value) and "wingman:slow" in str(err.value)


@pytest.mark.parametrize(
    ("spec", "var"),
    [("openai:gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic:c", "ANTHROPIC_API_KEY")],
)
def test_provider_without_api_key(no_keys, spec, var):
    with pytest.raises(ModelError) as err:
        resolve_model(spec)
    assert f"needs an API key: set {var}" in str(err.value)


def test_api_key_from_the_config_file_is_enough(no_keys, settings):
    raw = {**settings.WINGMAN.raw, "providers": {"openai": {"apiKey": "from-file"}}}
    settings.WINGMAN = settings.WINGMAN.model_copy(update={"raw": raw})
    model = resolve_model("openai:gpt-test")
    assert model.openai_api_key.get_secret_value() == "from-file"


def test_provider_not_installed(no_keys):
    pytest.importorskip("langchain_core")
    try:
        import langchain_ollama  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("langchain-ollama is installed here")
    with pytest.raises(ModelError) as err:
        resolve_model("ollama:llama3")
    assert "pip install 'wingman-gateway[ollama]'" in str(err.value)


async def test_run_turn_surfaces_model_errors(no_keys, tmp_path):
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await turn("hi", tmp_path, model="openai:gpt-4o-mini")
    assert "OPENAI_API_KEY" not in os.environ
