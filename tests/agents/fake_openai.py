"""A tiny OpenAI-compatible server for tests: ``POST /v1/chat/completions`` on 127.0.0.1.

Answers with real server-sent events (``data: {chat.completion.chunk}\\n\\n`` ...
``data: [DONE]\\n\\n``, chunked transfer encoding) or, without ``stream``, one
``chat.completion``. What it answers:

- the last message is a ``tool`` result → ``The tool said: <result>``;
- the request offers ``tools`` and the last user message starts with ``use <tool>`` →
  one streamed tool call (id, name, then the JSON arguments in pieces);
- anything else → ``Echo: <last user message>``, a few words per delta.

A last user message containing ``[slow]`` is answered after :data:`SLOW_SECONDS`.

Every request (path, lower-cased headers, JSON body) is recorded in :attr:`FakeOpenAI.requests`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
TOOL_CALL_ID = "call_fake_0001"
SLOW_SECONDS = 0.5


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def plan(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(answer text, tool call or None) for a request body."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {"role": "user", "content": ""}
    if last.get("role") == "tool":
        return f"The tool said: {_text_of(last)}", None
    prompt = _text_of(last).strip()
    offered = {t["function"]["name"] for t in body.get("tools") or [] if t.get("function")}
    words = prompt.split()
    if len(words) >= 2 and words[0].lower() == "use" and words[1] in offered:
        return "", {"id": TOOL_CALL_ID, "name": words[1], "arguments": json.dumps({"path": "."})}
    return f"Echo: {prompt}", None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "invalid JSON", "type": "invalid_request"}})
            return
        prefix = self.server.fake.prefix
        path = self.path[len(prefix) :] if self.path.startswith(prefix) else self.path
        self.server.fake.record(path, {k.lower(): v for k, v in self.headers.items()}, body)
        if path.rstrip("/") != "/v1/chat/completions" or not self.path.startswith(prefix):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if self.headers.get("Authorization") != f"Bearer {self.server.fake.api_key}":
            self._json(401, {"error": {"message": "bad api key", "type": "invalid_api_key"}})
            return
        text, call = plan(body)
        last = (body.get("messages") or [{}])[-1]
        if last.get("role") == "user" and "[slow]" in _text_of(last):
            time.sleep(SLOW_SECONDS)
        if body.get("stream"):
            self._stream(body, text, call)
        else:
            self._complete(body, text, call)

    # responses ----------------------------------------------------------------------
    def _json(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _complete(self, body: dict[str, Any], text: str, call: dict[str, Any] | None) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if call:
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]},
                }
            ]
        self._json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "gpt-test"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if call else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            },
        )

    def _stream(self, body: dict[str, Any], text: str, call: dict[str, Any] | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        model = body.get("model", "gpt-test")
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            self._send_chunk(f"data: {json.dumps(data)}\n\n")

        chunk({"role": "assistant", "content": ""})
        if call:
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
            args = call["arguments"]
            for piece in (args[:5], args[5:11], args[11:]):
                if piece:
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            chunk({}, "tool_calls")
        else:
            words = text.split(" ")
            for i, word in enumerate(words):
                chunk({"content": word + (" " if i < len(words) - 1 else "")})
            chunk({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
            self._send_chunk(
                "data: "
                + json.dumps(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                + "\n\n"
            )
        self._send_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeOpenAI


class FakeOpenAI:
    """``with FakeOpenAI() as fake:`` → serves on ``fake.base_url`` until the block ends."""

    def __init__(self, api_key: str = "test") -> None:
        self.api_key = api_key
        # Every instance has its own base URL, even when the OS hands out a port an earlier
        # instance used: langchain-openai keeps one HTTP client per base URL, and a client
        # made on an earlier test's (closed) event loop cannot be used on this one.
        self.prefix = f"/{secrets.token_hex(4)}"
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def record(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat-completion requests, oldest first."""
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}{self.prefix}/v1"

    def start(self) -> FakeOpenAI:
        self._server = _Server((HOST, 0), _Handler)  # port 0: a free port
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
