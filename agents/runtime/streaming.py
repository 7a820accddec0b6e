"""Token streaming without keeping every chunk until the answer ends.

When a chat model streams (``astream_events`` asks it to), LangChain's ``BaseChatModel``
keeps every ``ChatGenerationChunk`` in a list and merges them only when the stream ends:
~1.9 KB per token with the offline model (pydantic message objects), so a 60k-token answer
held ~112 MB until its last token, in a bare LangGraph process as in the gateway.

:class:`LeanStream` wraps a chat model and does that streaming itself: each chunk goes to
the callbacks exactly as ``BaseChatModel`` sends it (so ``astream_events`` yields the same
``on_chat_model_stream`` events, named after the wrapped model), and the chunks are merged
with LangChain's own ``+`` every :attr:`LeanStream.merge_every` chunks instead of at the end. The
answer is the same message; what is held is the message so far plus at most one batch.

Anything this does not cover goes to the wrapped model's own path unchanged: a model
without streaming, streaming turned off, content-block output (``output_version="v1"``),
a cache or a rate limiter on the model (:func:`lean_stream` does not wrap those).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableBinding
from langchain_core.utils.utils import LC_ID_PREFIX

#: generation_info LangChain does not copy into a message's response_metadata
_NOT_METADATA = "lc_gateway_metadata"


def lean_stream(model: BaseChatModel) -> BaseChatModel:
    """``model`` wrapped in :class:`LeanStream` when it streams the usual way, else itself."""
    plain = (
        type(model)._astream is not BaseChatModel._astream
        and getattr(model, "output_version", None) != "v1"
        and not model.cache
        and model.rate_limiter is None
        and model.disable_streaming is False
    )
    if not plain:
        return model
    return LeanStream(
        inner=model,
        name=model.get_name(),
        callbacks=model.callbacks,
        tags=model.tags,
        metadata=model.metadata,
    )


class LeanStream(BaseChatModel):
    """See the module docstring."""

    inner: BaseChatModel
    #: chunks merged at a time (the merge copies the text so far: once per batch)
    merge_every: int = 256

    @property
    def _llm_type(self) -> str:
        return self.inner._llm_type

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self.inner._identifying_params

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any):
        return self.inner._get_ls_params(stop=stop, **kwargs)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        """The wrapped model's own tool binding (its format), applied to this wrapper; a
        model that binds tools some other way keeps its binding (and streams as before)."""
        bound = self.inner.bind_tools(tools, **kwargs)
        if isinstance(bound, RunnableBinding) and bound.bound is self.inner:
            return self.bind(**bound.kwargs)
        return bound

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Our _astream is BaseChatModel's, so LangChain calls this one; stream when the
        # wrapped model would have (a streaming handler such as astream_events is attached).
        if not self.inner._should_stream(async_api=True, run_manager=run_manager, **kwargs):
            return await self.inner._agenerate(
                messages, stop=stop, run_manager=run_manager, **kwargs
            )
        run_id = f"{LC_ID_PREFIX}-{run_manager.run_id}" if run_manager else None
        merged: ChatGenerationChunk | None = None
        pending: list[ChatGenerationChunk] = []
        async for chunk in self.inner._astream(messages, stop=stop, **kwargs):
            await _announce(chunk, run_id, run_manager)
            pending.append(chunk)
            if len(pending) >= self.merge_every:
                merged, pending = _merge(merged, pending), []
        last = (pending or [merged])[-1]
        if last is not None and _open_ended(last):  # end it as BaseChatModel does
            empty: Any = "" if isinstance(last.message.content, str) else []
            end = AIMessageChunk(content=empty, chunk_position="last", id=run_id)
            pending.append(ChatGenerationChunk(message=end))
            await _announce(pending[-1], run_id, run_manager)
        merged = _merge(merged, pending)
        if merged is None:
            raise ValueError("No generations found in stream.")
        message = message_chunk_to_message(merged.message)
        generation = ChatGeneration(message=message, generation_info=merged.generation_info)
        return ChatResult(generations=[generation])


def _open_ended(chunk: ChatGenerationChunk) -> bool:
    return isinstance(chunk.message, AIMessageChunk) and not chunk.message.chunk_position


async def _announce(
    chunk: ChatGenerationChunk,
    run_id: str | None,
    run_manager: AsyncCallbackManagerForLLMRun | None,
) -> None:
    """What BaseChatModel does with each streamed chunk before it keeps it."""
    message = chunk.message
    info = {k: v for k, v in (chunk.generation_info or {}).items() if k != _NOT_METADATA}
    message.response_metadata = {**info, **message.response_metadata}
    if run_manager is not None:
        if message.id is None:
            message.id = run_id
        await run_manager.on_llm_new_token(message.content, chunk=chunk)


def _merge(
    merged: ChatGenerationChunk | None, pending: list[ChatGenerationChunk]
) -> ChatGenerationChunk | None:
    if not pending:
        return merged
    if merged is None:
        merged, pending = pending[0], pending[1:]
    return merged + pending if pending else merged
