"""End to end: SIGTERM while ``agent`` calls are running, on both ASGI servers.

Each requester must get, in this order: its run's ``agent-cancelled`` event, the final
``res`` of its ``agent`` call (status ``cancelled``, the partial answer kept), the
``shutdown`` event, then close 1012.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import pytest

from tests.agents.test_e2e_agents import write_agents_config
from tests.gateway.gateway_process import (
    ASGI_SERVERS,
    TOKEN,
    GatewayFactory,
    WsClient,
    connected,
    ws_client,
)

pytestmark = pytest.mark.e2e

CANONICAL_CLIENTS = 4


def _agent_event(frame: dict[str, Any], run_id: str) -> str | None:
    """The step type of an ``agent`` event of ``run_id`` (either dialect), else None."""
    if frame.get("event") != "agent" or frame["payload"].get("runId") != run_id:
        return None
    return frame["payload"]["type"]


def _is_reply(frame: dict[str, Any], rid: Any) -> bool:
    return frame.get("id") == rid and ("result" in frame or frame.get("type") == "res")


def _reply_payload(frame: dict[str, Any]) -> dict[str, Any]:
    return frame["result"] if "result" in frame else frame["payload"]


async def _start_run(c: WsClient, session: str) -> tuple[Any, str]:
    """Send ``agent``; return (request id, run id) once its ``agent-start`` arrived."""
    frame = c.request_frame("agent", {"message": "/stream 400", "sessionKey": session})
    await c.send(frame)
    ack = _reply_payload(await c.response(frame["id"]))
    assert ack["status"] == "accepted", ack
    run_id = ack["runId"]
    await c.next_event("agent", where=lambda f: _agent_event(f, run_id) == "agent-stream")
    return frame["id"], run_id


def _check_ending(name: str, frames: list[dict[str, Any]], rid: Any, run_id: str) -> None:
    """agent-cancelled, then the final reply, then shutdown, and nothing after it."""
    kinds: list[str] = []
    for f in frames:
        step = _agent_event(f, run_id)
        if step in ("agent-cancelled", "agent-complete", "agent-error"):
            kinds.append(step)
        elif _is_reply(f, rid):
            kinds.append("final")
        elif f.get("event") == "shutdown":
            kinds.append("shutdown")
    assert kinds == ["agent-cancelled", "final", "shutdown"], f"{name}: {kinds}"
    assert frames[-1].get("event") == "shutdown", f"{name}: frames after shutdown: {frames[-3:]}"


@pytest.mark.parametrize("server", ASGI_SERVERS)
async def test_sigterm_sends_each_agent_call_its_final_reply_before_shutdown(
    gateway_factory: GatewayFactory, tmp_path, server: str
) -> None:
    state = tmp_path / "state"
    write_agents_config(state, [{"id": "main", "default": True, "model": "wingman:slow"}])
    gw = gateway_factory({"WINGMAN_ASGI_SERVER": server}, state_dir=state)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connected(gw, name=f"canonical-{i}"))
            for i in range(CANONICAL_CLIENTS)
        ]
        rpc = await stack.enter_async_context(ws_client(gw.url, dialect="jsonrpc", name="rpc"))
        await rpc.ok("auth", {"token": TOKEN})
        clients.append(rpc)
        calls = [await _start_run(c, f"agent:main:stop-{i}") for i, c in enumerate(clients)]

        started = time.monotonic()
        gw.signal(signal.SIGTERM)
        endings = await asyncio.gather(*(c.expect_close(timeout=8) for c in clients))
        for c, (rid, run_id), (code, frames) in zip(clients, calls, endings, strict=True):
            _check_ending(c.name, frames, rid, run_id)
            final = _reply_payload(next(f for f in frames if _is_reply(f, rid)))
            assert (final["runId"], final["status"]) == (run_id, "cancelled"), final
            streamed = "".join(
                f["payload"]["text"]
                for f in c.received
                if _agent_event(f, run_id) == "agent-stream"
            )
            assert streamed and final["result"]["text"] == streamed, (final, streamed)
            assert code == 1012, f"{c.name}: close code {code}\n{gw.log_tail()}"
    exit_code = await gw.await_exit(timeout=max(0.1, 8 - (time.monotonic() - started)))
    assert exit_code == 0, f"exit code {exit_code}\n{gw.log_tail()}"
    assert "Traceback" not in gw.log(), gw.log_tail()
