"""``wingman:*`` — a built-in offline chat model, so a fresh gateway answers with no API key.

It is a real LangChain chat model (streams token by token through LangGraph) with
predictable behaviour:
- ``/tool NAME {json args}`` calls tool NAME (when the agent may use it), then reports the
  tool's output;
- ``/stream N`` streams N short tokens;
- ``/bench N`` streams N tokens ``"<i>:<time_ns> "`` stamped with the wall-clock time each was
  produced, so a client can measure model-to-client latency (``wingman gateway bench``);
- ``/fail MESSAGE`` raises an error (to exercise agent-error);
- anything else is echoed back: ``You said: <prompt>``.
Models: ``wingman:echo`` (as fast as it can) and ``wingman:slow`` (50 ms per token).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

MODELS = {"echo": 0.0, "slow": 0.05}
#: id(tool) -> (weak reference to it, its OpenAI schema); agents bind the same shared tool
#: objects on every model call (agents/runtime/tools.py), and converting costs a pydantic
#: schema walk each time.
_SCHEMAS: dict[int, tuple[weakref.ref, dict]] = {}
_TOOL = re.compile(r"^/tool\s+([\w.-]+)\s*(\{.*\})?\s*$", re.S)
_STREAM = re.compile(r"^/stream\s+(\d+)\s*$")
_BENCH = re.compile(r"^/bench\s+(\d+)\s*$")
_FAIL = re.compile(r"^/fail\s*(.*)$", re.S)


class OfflineModelError(RuntimeError):
    """Raised by ``/fail``."""


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


class OfflineChatModel(BaseChatModel):
    """See the module docstring."""

    model_name: str = "echo"
    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "wingman-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        return self.bind(tools=[_tool_schema(t) for t in tools], **kwargs)

    # The answer -------------------------------------------------------------------------
    def _plan(
        self, messages: list[BaseMessage], tools: list[dict] | None
    ) -> tuple[list[str], dict | None]:
        """(text tokens, tool call or None) for this turn."""
        last = messages[-1] if messages else HumanMessage("")
        if isinstance(last, ToolMessage):
            return _words(f"Tool {last.name or 'tool'} returned: {_text(last)}"), None
        prompt = _text(last).strip()
        if m := _FAIL.match(prompt):
            raise OfflineModelError(m.group(1) or "offline model failure requested")
        if m := _STREAM.match(prompt):
            return _Numbered(int(m.group(1))), None
        if m := _BENCH.match(prompt):
            return _Stamped(int(m.group(1))), None
        if m := _TOOL.match(prompt):
            name = m.group(1)
            allowed = {t["function"]["name"] for t in tools or []}
            if name not in allowed:
                return _words(
                    f"I cannot use the tool {name!r} (allowed: {sorted(allowed) or 'none'})."
                ), None
            args = json.loads(m.group(2) or "{}")
            return [], {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}"}
        return _words(f"You said: {prompt}"), None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tokens, call = self._plan(messages, kwargs.get("tools"))
        message = AIMessage(content="".join(tokens), tool_calls=[call] if call else [])
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tokens, call = self._plan(messages, kwargs.get("tools"))
        for token in tokens:
            if self.token_delay:
                time.sleep(self.token_delay)
            yield _chunk(token, run_manager)
        if call:
            yield _tool_chunk(call)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tokens, call = self._plan(messages, kwargs.get("tools"))
        for token in tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
            if run_manager:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        if call:
            yield _tool_chunk(call)


class _Numbered:
    """``t0 t1 ...``, made as they are iterated (a long stream is not built up front)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self):
        return (f"t{i} " for i in range(self.count))

    def __len__(self) -> int:
        return self.count


class _Stamped:
    """Tokens stamped with their production time, made as they are iterated."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self):
        return (f"{i}:{time.time_ns()} " for i in range(self.count))

    def __len__(self) -> int:
        return self.count


def _tool_schema(tool: Any) -> dict:
    """``convert_to_openai_tool(tool)``, remembered while ``tool`` lives."""
    cached = _SCHEMAS.get(id(tool))
    if cached is not None and cached[0]() is tool:
        return cached[1]
    schema = convert_to_openai_tool(tool)
    key = id(tool)
    try:
        ref = weakref.ref(tool, lambda _: _SCHEMAS.pop(key, None))
    except TypeError:  # a dict or a function: not weakly referable, and cheap anyway
        return schema
    _SCHEMAS[key] = (ref, schema)
    return schema


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]


def _chunk(token: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
    chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
    if run_manager:
        run_manager.on_llm_new_token(token, chunk=chunk)
    return chunk


def _tool_chunk(call: dict) -> ChatGenerationChunk:
    return ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            tool_call_chunks=[
                {
                    "name": call["name"],
                    "args": json.dumps(call["args"]),
                    "id": call["id"],
                    "index": 0,
                }
            ],
        )
    )


def offline_model(name: str) -> OfflineChatModel:
    if name not in MODELS:
        raise KeyError(name)
    return OfflineChatModel(model_name=name, token_delay=MODELS[name])
