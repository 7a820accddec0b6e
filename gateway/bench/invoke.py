"""``wingman gateway bench --mode invoke``: node.invoke round trips through the gateway.

Two programs in this process: an operator and a node (a signed device, paired silently from
loopback; the bench approves its one command ``bench.echo`` and removes the node and device
afterwards). Measured in the same run:

- ``invoke``: operator → gateway → node (``node.invoke.request``) → gateway
  (``node.invoke.result``) → operator, one at a time;
- ``direct``: the same operator and node exchanging a frame of the same size over a direct
  WebSocket (the node's own echo server), the floor the gateway's hops are compared with.

The gateway's cost is ``invoke - direct`` (target: < 2 ms at p99).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from typing import Any

import websockets
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.bench.client import BenchError, Endpoint
from gateway.security.device import b64url_encode, device_id_of

COMMAND = "bench.echo"
TARGET_ADDED_P99_MS = 2.0


class Peer:
    """One canonical connection: requests by id, events to a queue."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame.get("type") == "res" and frame.get("id") in self.waiting:
                self.waiting.pop(frame["id"]).set_result(frame)
            elif frame.get("type") == "event":
                self.events.put_nowait(frame)

    async def call(self, method: str, params: Any) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.waiting[rid] = future
        await self.ws.send(
            json.dumps({"type": "req", "id": rid, "method": method, "params": params})
        )
        frame = await asyncio.wait_for(future, 30)
        if not frame.get("ok"):
            raise BenchError(f"{method} failed: {frame.get('error')}")
        return frame.get("payload") or {}


def _connect_params(endpoint: Endpoint, **fields: Any) -> dict[str, Any]:
    params = {"minProtocol": 4, "maxProtocol": 4, **fields}
    auth = {k: v for k, v in {"token": endpoint.token, "password": endpoint.password}.items() if v}
    if auth:
        params["auth"] = auth
    return params


async def _open(endpoint: Endpoint, build) -> Peer:
    ws = await websockets.connect(endpoint.url, proxy=None, compression=None, max_size=None)
    challenge = json.loads(await ws.recv())["payload"]
    await ws.send(
        json.dumps({"type": "req", "id": "c", "method": "connect", "params": build(challenge)})
    )
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("type") == "res":
            break
    if not frame.get("ok"):
        raise BenchError(f"connect refused: {frame.get('error')}")
    return Peer(ws)


def _node_params(endpoint: Endpoint, key: Ed25519PrivateKey, challenge: dict) -> dict[str, Any]:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    device_id = device_id_of(raw)
    token = endpoint.token or ""
    ts, nonce = challenge["ts"], challenge["nonce"]
    signed = f"v3|{device_id}|node-host|node|node||{ts}|{token}|{nonce}|linux|linux"
    device = {
        "id": device_id,
        "publicKey": b64url_encode(raw),
        "signature": b64url_encode(key.sign(signed.encode())),
        "signedAt": challenge["ts"],
        "nonce": challenge["nonce"],
    }
    client = {"id": "node-host", "version": "bench", "platform": "linux", "deviceFamily": "Linux"}
    client |= {
        "mode": "node",
        "displayName": f"bench-{device_id[:8]}",
        "instanceId": str(uuid.uuid4()),
    }
    return _connect_params(
        endpoint,
        client=client,
        role="node",
        scopes=[],
        caps=["bench"],
        commands=[COMMAND],
        device=device,
    )


async def _serve_node(node: Peer) -> None:
    """Answer every invoke at once with its own params."""
    while True:
        frame = await node.events.get()
        if frame.get("event") != "node.invoke.request":
            continue
        req = frame["payload"]
        result = {
            "id": req["id"],
            "nodeId": req["nodeId"],
            "ok": True,
            "payloadJSON": req.get("paramsJSON"),
        }
        await node.ws.send(
            json.dumps(
                {
                    "type": "req",
                    "id": f"r{req['id']}",
                    "method": "node.invoke.result",
                    "params": result,
                }
            )
        )


def summary(samples_ms: list[float], seconds: float) -> dict[str, float]:
    """p50, p99 (ms) and round trips per second."""
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {"p50": statistics.median(ordered), "p99": p99, "rate": len(ordered) / seconds}


async def _timed(n: int, once) -> dict[str, float]:
    samples = []
    began = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        await once(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return summary(samples, time.perf_counter() - began)


async def _pair(operator: Peer, node_id: str) -> None:
    listed = await operator.call("node.pair.list", {})
    mine = [p for p in listed["pending"] if p["nodeId"] == node_id]
    if not mine:
        raise BenchError("the bench node's surface did not appear pending")
    await operator.call("node.pair.approve", {"requestId": mine[0]["requestId"]})


async def measure(endpoint: Endpoint, *, invokes: int, warmup: int = 50) -> dict[str, Any]:
    """Both measurements, interleaved in halves; the report dict."""
    key = Ed25519PrivateKey.generate()
    node_id = device_id_of(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    operator = await _open(
        endpoint,
        lambda ch: _connect_params(
            endpoint, client={"id": "bench", "version": "bench", "mode": "cli"}, role="operator"
        ),
    )
    node = await _open(endpoint, lambda ch: _node_params(endpoint, key, ch))
    echo_server = await websockets.serve(lambda ws: _echo(ws), "127.0.0.1", 0, compression=None)
    echo_port = echo_server.sockets[0].getsockname()[1]
    direct = await websockets.connect(f"ws://127.0.0.1:{echo_port}", proxy=None, compression=None)
    server = asyncio.ensure_future(_serve_node(node))
    try:
        await _pair(operator, node_id)
        frame = json.dumps(
            {"nodeId": node_id, "command": COMMAND, "params": {"i": 0}, "timeoutMs": 10000}
        )

        async def invoke(i: int) -> None:
            got = await operator.call(
                "node.invoke",
                {"nodeId": node_id, "command": COMMAND, "params": {"i": i}, "timeoutMs": 10000},
            )
            if got.get("payload") != {"i": i}:
                raise BenchError(f"invoke {i} answered {got}")

        async def echo(i: int) -> None:
            await direct.send(frame)
            await direct.recv()

        await _timed(warmup, invoke)
        await _timed(warmup, echo)
        half = max(1, invokes // 2)
        results = {"invoke": [], "direct": []}
        for _ in range(2):  # interleaved, so drift affects both alike
            results["invoke"].append(await _timed(half, invoke))
            results["direct"].append(await _timed(half, echo))
    finally:
        server.cancel()
        await direct.close()
        echo_server.close()
        await _cleanup(operator, node, node_id)
    return _report(results, invokes=2 * half)


async def _echo(ws: Any) -> None:
    async for message in ws:
        await ws.send(message)


async def _cleanup(operator: Peer, node: Peer, node_id: str) -> None:
    """Forget the bench node and its device; close both connections."""
    await node.ws.close()
    for method, params in (
        ("node.pair.remove", {"nodeId": node_id}),
        ("device.pair.remove", {"deviceId": node_id}),
    ):
        with contextlib.suppress(BenchError):  # a gateway without the nodes app
            await operator.call(method, params)
    await operator.ws.close()


def _report(results: dict[str, list[dict[str, float]]], *, invokes: int) -> dict[str, Any]:
    merged = {
        name: {k: statistics.mean(r[k] for r in runs) for k in ("p50", "p99", "rate")}
        for name, runs in results.items()
    }
    added = merged["invoke"]["p99"] - merged["direct"]["p99"]
    return {
        "mode": "invoke",
        "roundTrips": invokes,
        "invoke": merged["invoke"],
        "direct": merged["direct"],
        "gatewayAddedP50Ms": merged["invoke"]["p50"] - merged["direct"]["p50"],
        "gatewayAddedP99Ms": added,
        "targetAddedP99Ms": TARGET_ADDED_P99_MS,
        "met": added < TARGET_ADDED_P99_MS,
    }


def table(report: dict[str, Any]) -> str:
    """The report as text."""
    lines = [f"node.invoke round trips: {report['roundTrips']} (one at a time)", ""]
    lines.append(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}{'per s':>10}")
    for name, label in (
        ("invoke", "operator→gateway→node→back"),
        ("direct", "direct WebSocket echo"),
    ):
        r = report[name]
        lines.append(f"{label:28}{r['p50']:>10.3f}{r['p99']:>10.3f}{r['rate']:>10.0f}")
    verdict = "met" if report["met"] else "NOT met"
    lines.append("")
    lines.append(
        f"gateway adds {report['gatewayAddedP50Ms']:.3f} ms p50, "
        f"{report['gatewayAddedP99Ms']:.3f} ms p99 "
        f"(target < {report['targetAddedP99Ms']:g} ms p99: {verdict})"
    )
    return "\n".join(lines)
