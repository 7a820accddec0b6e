"""End-to-end helpers: run the real gateway as a subprocess and talk to it like a client.

- :class:`GatewayProcess` starts ``python -m wingman gateway run --port 0`` with its own
  state dir and environment, reads the port from the ``listening`` line (bounded wait),
  keeps the whole server log for failure messages, and stops it (SIGTERM, then SIGKILL).
- :class:`WorkerProcess` does the same for a Celery worker (``celery -A wingman worker -P
  threads``) that executes runs in the scaled setup; ready once Celery says ``ready.``.
- :class:`WsClient` wraps a ``websockets`` connection: every frame it receives is validated
  against the protocol models in ``gateway/protocol/`` and every event's ``seq`` is checked
  to grow by exactly 1 on that connection.
- ``scenario_*`` coroutines are protocol checks shared by the embedded and Redis suites.

Only 127.0.0.1 is used; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import functools
import itertools
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import Message
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from gateway.protocol import events as ev
from gateway.protocol import frames, handshake, system
from gateway.protocol.base import Frame
from gateway.security.scopes import OPERATOR_SCOPES
from tests.fixtures import client_frames

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
TOKEN = "secret"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
RECV_TIMEOUT = 5.0
CLOSE_TIMEOUT = 5.0

LISTEN_RE = re.compile(r"Wingman gateway listening on wss?://127\.0\.0\.1:(\d+)/")
UI_LISTEN_RE = re.compile(r"Control UI also on https?://127\.0\.0\.1:(\d+)/")

#: Inherited variables that would leak the developer's own gateway setup into a test server.
_SCRUBBED_PREFIXES = ("WINGMAN_",)
_SCRUBBED = {"REDIS_URL", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
#: ... except the ASGI server under test: ``WINGMAN_ASGI_SERVER=daphne pytest tests/gateway``
#: runs every end-to-end test on daphne instead of the default.
_PASSED_THROUGH = {"WINGMAN_ASGI_SERVER"}
#: The servers the server-specific guarantees (``each_server`` fixture) are checked on.
ASGI_SERVERS = ("uvicorn", "daphne")

SYSTEM_METHODS = {"health", "status", "ping", "system-presence", "subscribe", "unsubscribe"}


# --------------------------------------------------------------------------------------
# the gateway process
# --------------------------------------------------------------------------------------
class GatewayStartError(AssertionError):
    """The gateway did not come up; the message carries its log."""


def gateway_env(state_dir: Path, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """A clean environment for a gateway subprocess (token ``secret`` unless overridden).

    A value of ``None`` in ``extra`` removes the variable (e.g. no token for auth mode none).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k in _PASSED_THROUGH or (k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "wingman.settings",
            "WINGMAN_STATE_DIR": str(state_dir),
            # never read a developer's .env from the working directory
            "WINGMAN_ENV_FILE": str(state_dir / "no-such.env"),
            "WINGMAN_GATEWAY_TOKEN": TOKEN,
            # the second (Control UI) listener on any free port, never the shared 18790
            "WINGMAN_CONTROL_UI_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


_SQLITE = "wingman.sqlite3"


@functools.cache
def _migrated_sqlite() -> Path:
    """A SQLite database ``wingman gateway migrate`` migrated, made once per test session."""
    state = Path(tempfile.mkdtemp(prefix="wingman-migrated-"))
    atexit.register(shutil.rmtree, state, True)
    done = run_cli(["gateway", "migrate"], gateway_env(state))
    assert done.returncode == 0 and "Migrations: applied" in done.stdout, done
    return state / _SQLITE


def seed_sqlite(state_dir: Path, env: dict[str, str]) -> None:
    """Give a new state dir (SQLite, no database yet) a copy of the migrated database, so a
    test gateway does not spend its start migrating (~1 s each). A gateway's own first-start
    migration is tested through the CLI (tests/ops/test_migrations.py, the daemon tests)."""
    database = Path(env.get("WINGMAN_STATE_DIR", state_dir)) / _SQLITE
    if "DATABASE_URL" in env or database.exists():
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_migrated_sqlite(), database)


class GatewayProcess:
    """One ``wingman gateway run`` subprocess on a free loopback port."""

    def __init__(
        self,
        state_dir: Path,
        *,
        env: dict[str, str | None] | None = None,
        args: list[str] | tuple[str, ...] = (),
        name: str = "gateway",
    ) -> None:
        self.name = name
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.env = gateway_env(self.state_dir, env)
        self.args = list(args)
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None
        #: The Control UI listener's port (None when ``WINGMAN_CONTROL_UI=false``).
        self.ui_port: int | None = None
        self._lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None

    # start / stop ---------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> GatewayProcess:
        seed_sqlite(self.state_dir, self.env)
        cmd = [sys.executable, "-m", "wingman", "gateway", "run", "--host", HOST, "--port", "0"]
        self._spawn([*cmd, *self.args])
        self._await_line(self._listening, "'listening' line", "listening", timeout)
        return self

    def _listening(self, line: str) -> bool:
        """Read the ports from the start lines; True once all are known."""
        match = LISTEN_RE.search(line)
        if match:
            self.port = int(match.group(1))
            if self.env.get("WINGMAN_CONTROL_UI", "true") == "false":
                return True
        match = UI_LISTEN_RE.search(line)
        if match:
            self.ui_port = int(match.group(1))
        return self.port is not None and self.ui_port is not None

    def _spawn(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, name=f"{self.name}-log", daemon=True)
        self._reader.start()

    def _await_line(
        self, done: Callable[[str], bool], what: str, state: str, timeout: float
    ) -> None:
        """Read the log until ``done(line)``; stop the process and fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise GatewayStartError(
                    f"{self.name}: no {what} within {timeout:.0f}s\n{self.log()}"
                )
            try:
                line = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                code = self.wait(5)
                raise GatewayStartError(
                    f"{self.name}: exited with code {code} before {state}\n{self.log()}"
                )
            if done(line):
                return

    async def astart(self, timeout: float = START_TIMEOUT) -> GatewayProcess:
        return await asyncio.to_thread(self.start, timeout)

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self._lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: a crash (no drain, no warm shutdown; its runs are left as they were)."""
        self.signal(signal.SIGKILL)
        assert self.wait(10) is not None, f"{self.name} survived SIGKILL"

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    async def await_exit(self, timeout: float) -> int | None:
        return await asyncio.to_thread(self.wait, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._lines.append(f"[test harness: SIGKILL after {timeout:.0f}s]")
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            with contextlib.suppress(Exception):
                self.proc.stdout.close()
        return self.proc.returncode

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # addresses and logs -----------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self.port, "gateway not started"
        return f"ws://{HOST}:{self.port}/"

    @property
    def http_url(self) -> str:
        assert self.port, "gateway not started"
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        return "\n".join(self._lines)

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.name} log (last {lines} lines) ---\n" + "\n".join(self._lines[-lines:])

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The ``gateway_factory`` fixture: ``make(env=None, *, args=(), name=None, state_dir=None,
#: start=True)`` → a :class:`GatewayProcess`.
GatewayFactory = Callable[..., GatewayProcess]


WORKER_READY_RE = re.compile(r"@\S+ ready\.")
WORKER_SEAT_RE = re.compile(r"worker runtime started \(seat (\w+)\)")


class WorkerProcess(GatewayProcess):
    """One Celery worker (``celery -A wingman worker -P threads``) executing runs, with the
    environment a gateway gets (its own state dir; pass the gateways' REDIS_URL,
    DATABASE_URL, prefixes and WINGMAN_CELERY_QUEUE). Ready once Celery logs ``ready.``;
    ``seat`` is its runtime's seat id (the owner of the runs it executes)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        env: dict[str, str | None] | None = None,
        concurrency: int = 4,
        name: str = "worker",
    ) -> None:
        super().__init__(state_dir, env=env, name=name)
        self.concurrency = concurrency
        self.seat: str | None = None

    def start(self, timeout: float = START_TIMEOUT) -> WorkerProcess:
        cmd = [sys.executable, "-m", "celery", "-A", "wingman", "worker", "-P", "threads"]
        # no mingle/gossip/heartbeat: one worker per queue here, and it starts a second sooner
        options = ["-c", str(self.concurrency), "--loglevel", "INFO", "-n", f"{self.name}@%h"]
        quiet = ["--without-mingle", "--without-gossip", "--without-heartbeat"]
        self._spawn([*cmd, *options, *quiet])
        self._await_line(self._ready, "'ready.' line", "ready", timeout)
        assert self.seat, f"{self.name}: ready without a runtime seat\n{self.log()}"
        return self

    def _ready(self, line: str) -> bool:
        if match := WORKER_SEAT_RE.search(line):
            self.seat = match.group(1)
        return WORKER_READY_RE.search(line) is not None

    async def astart(self, timeout: float = START_TIMEOUT) -> WorkerProcess:
        return await asyncio.to_thread(self.start, timeout)


#: The ``worker_factory`` fixture: ``make(env=None, *, name=None, state_dir=None,
#: concurrency=4, start=True)`` → a :class:`WorkerProcess`.
WorkerFactory = Callable[..., WorkerProcess]


# --------------------------------------------------------------------------------------
# frame validation
# --------------------------------------------------------------------------------------
EVENT_PAYLOADS: dict[str, type[BaseModel]] = {
    ev.CONNECT_CHALLENGE: ev.ChallengePayload,
    ev.TICK: ev.TickPayload,
    ev.PRESENCE: ev.PresencePayload,
    ev.PRESENCE_TICK: ev.PresenceTickPayload,
    ev.SHUTDOWN: ev.ShutdownPayload,
    ev.WEBHOOK: ev.WebhookPayload,
    ev.ROUTINE: ev.RoutinePayload,
}

RESULT_MODELS: dict[str, type[BaseModel]] = {
    "connect": handshake.HelloOk,
    "health": handshake.Health,
    "status": system.StatusResult,
    "ping": system.PingResult,
    "system-presence": system.PresenceResult,
    "subscribe": system.SubscriptionResult,
    "unsubscribe": system.SubscriptionResult,
    "auth": system.AuthResult,
}


class JsonRpcResult(Frame):
    id: int | str | None
    result: Any


class JsonRpcError(Frame):
    id: int | str | None
    error: frames.ErrorShape


class JsonRpcEvent(Frame):
    event: str = Field(min_length=1)
    payload: Any = None
    timestamp: int
    seq: int = Field(ge=1)


def _model(model: type[BaseModel], data: Any, what: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AssertionError(f"{what} does not match {model.__name__}: {exc}\n{data!r}") from None


def validate_event_payload(name: str, payload: Any) -> None:
    model = EVENT_PAYLOADS.get(name)
    if model is not None:
        _model(model, payload, f"payload of event {name!r}")


def validate_canonical(frame: Any) -> None:
    """A server frame of the canonical dialect (res, event, legacy hello-ok/hello-error)."""
    assert isinstance(frame, dict), f"frame is not a JSON object: {frame!r}"
    kind = frame.get("type")
    if kind == "res":
        res = _model(frames.ResponseFrame, frame, "response")
        if res.ok:
            assert res.error is None, f"ok:true response carries an error: {frame}"
        else:
            assert res.error is not None, f"ok:false response without an error: {frame}"
    elif kind == "event":
        evt = _model(frames.EventFrame, frame, "event")
        validate_event_payload(evt.event, frame.get("payload"))
        if evt.event != ev.CONNECT_CHALLENGE:
            assert evt.seq is not None, f"event without seq: {frame}"
    elif kind == "hello-ok":
        _model(handshake.HelloOk, frame, "legacy hello-ok")
    elif kind == "hello-error":
        _model(handshake.HelloError, frame, "legacy hello-error")
    else:
        raise AssertionError(f"unexpected canonical frame type {kind!r}: {frame}")


def validate_jsonrpc(frame: Any) -> None:
    """A server frame of the jsonrpc dialect (result, error, event; or the challenge)."""
    assert isinstance(frame, dict), f"frame is not a JSON object: {frame!r}"
    if frame.get("type") == "event" and frame.get("event") == ev.CONNECT_CHALLENGE:
        validate_canonical(frame)  # sent to every socket before its dialect is known
    elif "event" in frame:
        evt = _model(JsonRpcEvent, frame, "jsonrpc event")
        validate_event_payload(evt.event, frame.get("payload"))
    elif "error" in frame:
        _model(JsonRpcError, frame, "jsonrpc error")
    else:
        _model(JsonRpcResult, frame, "jsonrpc result")


def is_event(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "event" or ("event" in frame and "type" not in frame)


# --------------------------------------------------------------------------------------
# the WebSocket client
# --------------------------------------------------------------------------------------
_MISSING: Any = object()
_ids = itertools.count(1)


def connect_params(
    *,
    token: str | None = TOKEN,
    password: str | None = None,
    instance_id: str | None = None,
    min_protocol: int = 4,
    max_protocol: int = 4,
    client_id: str = "cli",
    mode: str = "cli",
    display_name: str | None = None,
    role: str = "operator",
    scopes: list[str] | None = None,
) -> dict[str, Any]:
    """``connect`` params shaped like the OpenClaw CLI's (``scopes``: every operator scope
    unless given, so a test may call any operator method)."""
    client: dict[str, Any] = {
        "id": client_id,
        "version": "2026.9.6",
        "platform": "linux",
        "deviceFamily": "Linux",
        "mode": mode,
        "instanceId": instance_id or str(uuid.uuid4()),
    }
    if display_name:
        client["displayName"] = display_name
    params: dict[str, Any] = {
        "minProtocol": min_protocol,
        "maxProtocol": max_protocol,
        "client": client,
        "caps": [],
        "role": role,
        "scopes": list(OPERATOR_SCOPES) if scopes is None else scopes,
    }
    auth = {k: v for k, v in {"token": token, "password": password}.items() if v is not None}
    if auth:
        params["auth"] = auth
    return params


def new_request_id() -> str:
    return f"{next(_ids)}:{uuid.uuid4()}"


class WsClient:
    """A validated, seq-checked view of one WebSocket connection."""

    def __init__(self, ws: ClientConnection, *, dialect: str = "canonical", name: str = "client"):
        self.ws = ws
        self.dialect = dialect
        self.name = name
        #: Frames read while waiting for something else (events mostly), oldest first.
        self.backlog: list[dict[str, Any]] = []
        #: Every frame received, in order.
        self.received: list[dict[str, Any]] = []
        self.last_seq = 0
        self.challenge: dict[str, Any] | None = None
        self.hello: dict[str, Any] | None = None
        self._methods: dict[Any, str] = {}

    # raw I/O ----------------------------------------------------------------------------
    async def send(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """The next frame from the wire, validated; fails after ``timeout`` seconds."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"{self.name}: no frame within {timeout}s (received so far: {self.received[-5:]})"
            ) from None
        assert isinstance(raw, str), f"{self.name}: server sent a binary frame: {raw[:200]!r}"
        try:
            frame = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{self.name}: server sent non-JSON: {raw[:200]!r}") from None
        if self.dialect == "jsonrpc":
            validate_jsonrpc(frame)
        else:
            validate_canonical(frame)
        if is_event(frame) and frame.get("seq") is not None:
            assert frame["seq"] == self.last_seq + 1, (
                f"{self.name}: event seq {frame['seq']} after {self.last_seq} "
                f"(must grow by exactly 1): {frame}"
            )
            self.last_seq = frame["seq"]
        self.received.append(frame)
        return frame

    async def expect_challenge(self) -> dict[str, Any]:
        frame = await self.recv()
        assert frame.get("type") == "event" and frame.get("event") == ev.CONNECT_CHALLENGE, (
            f"{self.name}: first frame is not connect.challenge: {frame}"
        )
        payload = frame["payload"]
        assert isinstance(payload.get("nonce"), str) and payload["nonce"], payload
        assert type(payload.get("ts")) is int, payload
        self.challenge = payload
        return payload

    async def expect_close(self, timeout: float = CLOSE_TIMEOUT) -> tuple[int | None, list[dict]]:
        """Read until the server closes; returns (close code, frames read meanwhile)."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name}: server did not close within {timeout}s; frames: {got[-5:]}"
                )
            try:
                got.append(await self.recv(remaining))
            except ConnectionClosed:
                return self.ws.close_code, got

    async def expect_silence(self, seconds: float) -> None:
        """No frame arrives for ``seconds`` (a negative check, bounded by design)."""
        with contextlib.suppress(TimeoutError):
            raw = await asyncio.wait_for(self.ws.recv(), seconds)
            raise AssertionError(f"{self.name}: expected no frame, got {raw[:300]!r}")

    # requests ---------------------------------------------------------------------------
    def request_frame(self, method: str, params: Any = _MISSING, rid: Any = None) -> dict:
        if self.dialect == "jsonrpc":
            rid = next(_ids) if rid is None else rid
            frame: dict[str, Any] = {"id": rid, "method": method}
        else:
            rid = new_request_id() if rid is None else rid
            frame = {"type": "req", "id": rid, "method": method}
        if params is not _MISSING:
            frame["params"] = params
        return frame

    async def call(
        self, method: str, params: Any = _MISSING, *, rid: Any = None, timeout: float = RECV_TIMEOUT
    ) -> dict[str, Any]:
        """Send a request; return its response frame (events meanwhile go to the backlog)."""
        frame = self.request_frame(method, params, rid)
        await self.send(frame)
        return await self.response(frame["id"], method=method, timeout=timeout)

    async def response(
        self, rid: Any, *, method: str | None = None, timeout: float = RECV_TIMEOUT
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.name}: no response to {rid!r} within {timeout}s")
            frame = await self.recv(remaining)
            if is_event(frame):
                self.backlog.append(frame)
                continue
            assert frame.get("id") == rid, f"{self.name}: expected response {rid!r}, got {frame}"
            if method is not None:
                self._check_result(method, frame)
            return frame

    def _check_result(self, method: str, frame: dict[str, Any]) -> None:
        model = RESULT_MODELS.get(method)
        if model is None:
            return
        if self.dialect == "jsonrpc" and "result" in frame:
            payload = frame["result"]
            if method == "auth":
                model = system.AuthResult
        elif frame.get("ok") is True:
            payload = frame.get("payload")
        else:
            return
        _model(model, payload, f"result of {method}")

    async def ok(self, method: str, params: Any = _MISSING, **kw: Any) -> Any:
        """Call and assert success; returns the payload (canonical) or result (jsonrpc)."""
        frame = await self.call(method, params, **kw)
        if self.dialect == "jsonrpc":
            assert "result" in frame, f"{self.name}: {method} failed: {frame}"
            return frame["result"]
        assert frame["ok"] is True, f"{self.name}: {method} failed: {frame}"
        return frame.get("payload")

    async def error(self, method: str, params: Any = _MISSING, **kw: Any) -> dict[str, Any]:
        """Call and assert failure; returns the error object."""
        frame = await self.call(method, params, **kw)
        if self.dialect == "jsonrpc":
            assert "error" in frame, f"{self.name}: {method} unexpectedly succeeded: {frame}"
            return frame["error"]
        assert frame["ok"] is False, f"{self.name}: {method} unexpectedly succeeded: {frame}"
        return frame["error"]

    async def handshake(self, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """``connect`` with OpenClaw-shaped params; returns the validated hello-ok payload."""
        hello = await self.ok("connect", params if params is not None else connect_params(**kw))
        assert hello["type"] == "hello-ok", hello
        self.hello = hello
        return hello

    async def ping_ok(self) -> None:
        """The connection is alive and serving requests."""
        result = await self.ok("ping")
        assert result["pong"] is True, result

    # events -----------------------------------------------------------------------------
    async def next_event(
        self,
        name: str,
        *,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = RECV_TIMEOUT,
    ) -> dict[str, Any]:
        """The next event ``name`` (matching ``where``), from the backlog or the wire."""
        for i, frame in enumerate(self.backlog):
            if frame.get("event") == name and (where is None or where(frame)):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [f.get("event") for f in self.received[-20:]]
                raise AssertionError(
                    f"{self.name}: no {name!r} event within {timeout}s (last frames: {seen})"
                )
            frame = await self.recv(remaining)
            if frame.get("event") == name and (where is None or where(frame)):
                return frame
            assert is_event(frame), f"{self.name}: unexpected non-event frame {frame}"
            self.backlog.append(frame)

    def clear_backlog(self) -> None:
        self.backlog.clear()


@contextlib.asynccontextmanager
async def ws_client(
    url: str, *, dialect: str = "canonical", name: str = "client", challenge: bool = True, **kw
) -> AsyncIterator[WsClient]:
    """Open a WebSocket to ``url`` (read and check ``connect.challenge`` unless told not to)."""
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 2)
    kw.setdefault("compression", None)
    async with connect(url, proxy=None, **kw) as ws:
        client = WsClient(ws, dialect=dialect, name=name)
        if challenge:
            await client.expect_challenge()
        yield client


@contextlib.asynccontextmanager
async def connected(
    gw: GatewayProcess, *, name: str = "client", **params: Any
) -> AsyncIterator[WsClient]:
    """A canonical client that completed the handshake (``params`` go to connect_params)."""
    async with ws_client(gw.url, name=name) as client:
        await client.handshake(**params)
        yield client


# --------------------------------------------------------------------------------------
# HTTP, CLI, sockets, waiting
# --------------------------------------------------------------------------------------
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, Message, bytes]:
    """(status, headers, body) of a GET; HTTP errors are returned, not raised. The headers
    are looked up case-insensitively, as HTTP names are (the server sends them lower-case)."""
    assert url.startswith(f"http://{HOST}:"), url
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with _NO_PROXY.open(request, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


async def ahttp_get(url: str, **kw: Any) -> tuple[int, Message, bytes]:
    return await asyncio.to_thread(http_get, url, **kw)


def wingman_command() -> list[str]:
    """The installed ``wingman`` console script (falls back to ``python -m wingman``)."""
    script = Path(sys.executable).with_name("wingman")
    return [str(script)] if script.exists() else [sys.executable, "-m", "wingman"]


def run_cli(
    args: list[str], env: dict[str, str], *, timeout: float = 60.0, cmd: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a CLI command to completion (bounded) and capture its output."""
    return subprocess.run(
        [*(cmd or wingman_command()), *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def wait_until(
    check: Callable[[], Awaitable[Any]], *, timeout: float, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {what} (last value: {last!r})")


def masked_text_frame(text: str) -> bytes:
    """One client→server WebSocket text frame (FIN, masked, RFC 6455 §5.2)."""
    payload = text.encode("utf-8")
    head = bytearray([0x81])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n < 1 << 16:
        head.append(0x80 | 126)
        head += struct.pack("!H", n)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", n)
    mask = os.urandom(4)
    head += mask
    return bytes(head) + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_websocket(port: int, *, timeout: float = 5.0) -> socket.socket:
    """A plain TCP socket that did the WebSocket upgrade by hand (and answers nothing)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"server closed during the upgrade: {head!r}"
        head += chunk
        assert len(head) < 65536, "upgrade response too long"
    status = head.split(b"\r\n", 1)[0]
    assert b" 101 " in status, f"upgrade refused: {head[:300]!r}"
    return sock


def openclaw_frames() -> dict[int, list[dict[str, Any]]]:
    """The OpenClaw fixture frames, grouped by connection number, in order."""
    return client_frames("openclaw-client-frames.jsonl")


def presence_has(frame: dict[str, Any], *, reason: str, instance_id: str) -> bool:
    """Does this presence event carry ``instance_id`` with ``reason``?"""
    return any(
        e.get("instanceId") == instance_id and e.get("reason") == reason
        for e in frame["payload"]["entries"]
    )


# --------------------------------------------------------------------------------------
# scenarios shared by the embedded and the Redis suites
# --------------------------------------------------------------------------------------
async def scenario_handshake_and_system_methods(gw: GatewayProcess) -> dict[str, Any]:
    """OpenClaw connect → hello-ok (features, self in presence); health/status/presence ok."""
    instance = str(uuid.uuid4())
    async with connected(gw, name="cli", instance_id=instance) as c:
        hello = c.hello
        assert hello is not None
        assert hello["protocol"] == 4, hello
        missing = SYSTEM_METHODS - set(hello["features"]["methods"])
        assert not missing, f"features.methods lacks {missing}: {hello['features']}"
        me = hello["server"]["connId"]
        assert any(
            e["connId"] == me and e.get("instanceId") == instance
            for e in hello["snapshot"]["presence"]
        ), f"hello-ok presence does not contain this connection {me}: {hello['snapshot']}"
        health = await c.ok("health", {})
        assert health["ok"] is True and health["status"] == "healthy", health
        assert health["connections"] >= 1, health
        health_no_params = await c.ok("health")  # some OpenClaw commands send no params key
        assert health_no_params["ok"] is True
        status = await c.ok("status", {})
        assert status["connection"]["connId"] == me, status
        listed = await c.ok("system-presence", {})
        assert any(e["connId"] == me for e in listed["presence"]), listed
        await c.ping_ok()
        return health


async def scenario_ticks(gw: GatewayProcess, interval_ms: int) -> None:
    """``tick`` every ``interval_ms`` with seq growing by 1 per event frame."""
    async with connected(gw, name="ticker") as c:
        assert c.hello is not None
        assert c.hello["policy"]["tickIntervalMs"] == interval_ms, c.hello["policy"]
        ticks = [await c.next_event(ev.TICK, timeout=interval_ms / 1000 * 4 + 2) for _ in range(4)]
        # every event frame on the connection (ticks, presence, ...) counted, no gaps
        seqs = [f["seq"] for f in c.received if is_event(f) and "seq" in f]
        assert seqs == list(range(1, len(seqs) + 1)), f"seq not 1,2,3,...: {seqs}"
        stamps = [t["payload"]["ts"] for t in ticks]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        # generous bounds: a loaded machine delays timers, it does not speed them up
        assert all(interval_ms * 0.5 <= g <= interval_ms * 5 for g in gaps), (
            f"tick gaps {gaps} ms do not match tickIntervalMs={interval_ms}"
        )
        mean = sum(gaps) / len(gaps)
        assert interval_ms * 0.8 <= mean <= interval_ms * 2.5, f"mean tick gap {mean} ms"


async def scenario_presence_between(gw_a: GatewayProcess, gw_b: GatewayProcess) -> None:
    """A sees B connect and disconnect (B may be on another process)."""
    inst_a, inst_b = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    async with connected(gw_a, name="A", instance_id=inst_a) as a:
        assert a.hello is not None
        v0 = a.hello["snapshot"]["stateVersion"]["presence"]
        async with connected(gw_b, name="B", instance_id=inst_b) as b:
            assert b.hello is not None
            b_conn = b.hello["server"]["connId"]
            joined = await a.next_event(
                ev.PRESENCE, where=lambda f: presence_has(f, reason="connect", instance_id=inst_b)
            )
            entry = next(e for e in joined["payload"]["entries"] if e.get("instanceId") == inst_b)
            assert entry["connId"] == b_conn, (entry, b_conn)
            v1 = joined["payload"]["stateVersion"]["presence"]
            assert v1 > v0, f"stateVersion.presence did not grow: {v0} -> {v1}"
            assert joined.get("stateVersion", {}).get("presence") == v1, joined
            listed = await a.ok("system-presence", {})
            ids = {e.get("instanceId") for e in listed["presence"]}
            assert {inst_a, inst_b} <= ids, f"system-presence lacks A or B: {listed}"
        left = await a.next_event(
            ev.PRESENCE,
            where=lambda f: presence_has(f, reason="disconnect", instance_id=inst_b),
            timeout=10,
        )
        assert left["payload"]["stateVersion"]["presence"] > v1, left
        listed = await a.ok("system-presence", {})
        assert inst_b not in {e.get("instanceId") for e in listed["presence"]}, listed
