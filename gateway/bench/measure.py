"""One measurement run against one server: connect, ping, fan-out, then close everything.

- connect: per-connection time from ``create_connection`` (TCP open) to the hello-ok
  frame, and the wall time until all N are connected (``concurrency`` in flight);
- ping: ``req ping`` → ``res``, one outstanding at a time, round-robin over the connections
  (the gateway rate-limits each client instanceId to 100 requests/min);
- fan-out: the servers have no client-callable broadcast, but both broadcast a ``presence``
  event to every connection when a client connects. So a fresh *trigger* connection is
  opened per round, and each of the N clients timestamps the first event that carries the
  trigger's instanceId. Latency is measured from the moment the trigger *sent* its
  ``connect`` request (so it includes the server handling that request); deliveries/s is
  the number of clients reached divided by the time from that moment to the last arrival
  (the time one event takes to reach everybody, not just the burst rate at the end).

The server's RSS is sampled once all N are connected and the server has had a moment to
settle (``SETTLE``), and again at the end of the run. The clients are in ``client.py``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.uri import parse_uri

from gateway.bench.client import CLOSE_TIMEOUT, BenchError, Client, Endpoint

CONNECT_TIMEOUT = 30.0
PING_TIMEOUT = 5.0
FANOUT_TIMEOUT = 10.0
#: Pause before each fan-out trigger. More than twice the presence coalescing window
#: (gateway/delivery/presence.py, Tracker.COALESCE_SECONDS = 0.2): the previous trigger's
#: disconnect has been flushed and the next connect is flushed at once, alone in its own
#: ``presence`` event.
TRIGGER_GAP = 0.5
#: Pause after the connect storm before the RSS sample and the pings.
SETTLE = 1.0
#: The gateway allows 100 requests/min per client instanceId (policy.rate_limit_per_minute).
MAX_PINGS_PER_CONNECTION = 50


@dataclass
class RunResult:
    """Raw samples of one run (seconds); report.py turns them into figures."""

    connections: int
    connect_times: list[float] = field(default_factory=list)
    connect_wall: float = 0.0
    failed: int = 0
    first_error: str | None = None
    ping_rtts: list[float] = field(default_factory=list)
    fanout_latencies: list[float] = field(default_factory=list)
    delivery_rates: list[float] = field(default_factory=list)
    #: Per fan-out round: (first, median, last) arrival after the trigger's connect was sent.
    rounds: list[tuple[float, float, float]] = field(default_factory=list)
    missed: int = 0
    rss_bytes: int | None = None
    rss_end_bytes: int | None = None

    @property
    def connected(self) -> int:
        return len(self.connect_times)


class Run:
    """One measurement against one server: connect, ping, fan-out, then close everything."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        connections: int,
        pings: int,
        broadcasts: int,
        concurrency: int,
        rss: Callable[[], int | None],
        log: Callable[[str], None],
    ) -> None:
        self.endpoint = endpoint
        self.uri = parse_uri(endpoint.url)
        self.n = connections
        self.pings = pings
        self.broadcasts = broadcasts
        self.concurrency = max(1, concurrency)
        self.sample_rss = rss
        self.log = log
        self.nonce = secrets.token_hex(4)  # unique instanceIds: the rate limit outlives a run
        self.clients: list[Client] = []
        # fan-out round state, read by every Client on every event frame
        self.watch: bytes | None = None
        self.round = 0
        self.arrivals: list[float] = []
        self.expected = 0
        self.all_arrived: asyncio.Future[None] | None = None

    def arrived(self, t: float) -> None:
        self.arrivals.append(t)
        done = self.all_arrived
        if len(self.arrivals) >= self.expected and done is not None and not done.done():
            done.set_result(None)

    async def measure(self) -> RunResult:
        result = RunResult(connections=self.n)
        try:
            await self._probe()
            await self._connect_all(result)
            await asyncio.sleep(SETTLE)
            result.rss_bytes = self.sample_rss()
            established = [c for c in self.clients if c.t_ready]
            await self._ping(established, result)
            await self._fan_out(established, result)
            result.rss_end_bytes = self.sample_rss()
        finally:
            await self._close(self.clients)
        return result

    async def open(self, client: Client) -> None:
        """Connect ``client`` and wait for its hello-ok (raises BenchError)."""
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        client.t_open = time.perf_counter()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(lambda: client, ep.host, ep.port)
                await client.ready
        except TimeoutError:
            client.abort()
            raise BenchError(f"no hello-ok from {ep.url} within {CONNECT_TIMEOUT:.0f} s") from None
        except ConnectionRefusedError:
            raise BenchError(f"cannot connect to {ep.url}: connection refused") from None
        except OSError as exc:
            raise BenchError(f"cannot connect to {ep.url}: {exc.strerror or exc}") from None

    async def _probe(self) -> None:
        """One connection alone first: fail fast and clearly (bad URL, token, ...)."""
        probe = Client(self, f"bench-{self.nonce}-probe", counted=False)
        await self.open(probe)
        await self._close([probe])
        await asyncio.sleep(TRIGGER_GAP)

    async def _connect_all(self, result: RunResult) -> None:
        self.log(f"connecting {self.n} clients ({self.concurrency} in flight)")
        self.clients = [Client(self, f"bench-{self.nonce}-{i}") for i in range(self.n)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(client: Client) -> BenchError | None:
            async with gate:
                try:
                    await self.open(client)
                except BenchError as exc:
                    return exc
                return None

        start = time.perf_counter()
        errors = [e for e in await asyncio.gather(*(one(c) for c in self.clients)) if e]
        done = [c for c in self.clients if c.t_ready]
        if not done:
            raise errors[0] if errors else BenchError("no client connected")
        result.connect_times = [c.t_ready - c.t_open for c in done]
        result.connect_wall = max(c.t_ready for c in done) - start
        result.failed = len(errors)
        if errors:
            result.first_error = str(errors[0])
            self.log(f"{len(errors)} of {self.n} connections failed; first: {errors[0]}")
        self.log(f"{len(done)} connected in {result.connect_wall:.2f} s")

    async def _ping(self, clients: list[Client], result: RunResult) -> None:
        count = min(self.pings, MAX_PINGS_PER_CONNECTION * len(clients))
        if count < self.pings:
            self.log(f"only {count} pings: at most {MAX_PINGS_PER_CONNECTION} per connection")
        self.log(f"{count} ping round trips")
        for k in range(count):
            sent, reply = clients[k % len(clients)].send_ping(k)
            try:
                async with asyncio.timeout(PING_TIMEOUT):
                    received = await reply
            except TimeoutError:
                raise BenchError(f"no reply to a ping within {PING_TIMEOUT:.0f} s") from None
            result.ping_rtts.append(received - sent)

    async def _fan_out(self, clients: list[Client], result: RunResult) -> None:
        self.log(f"{self.broadcasts} fan-out rounds to {len(clients)} clients")
        for _ in range(self.broadcasts):
            await asyncio.sleep(TRIGGER_GAP)
            await self._fan_out_round(len(clients), result)

    async def _fan_out_round(self, expected: int, result: RunResult) -> None:
        self.round += 1
        trigger = Client(self, f"bench-{self.nonce}-trigger-{self.round}", counted=False)
        self.watch = json.dumps(trigger.instance_id).encode()
        self.arrivals = []
        self.expected = expected
        self.all_arrived = asyncio.get_running_loop().create_future()
        try:
            await self.open(trigger)
            async with asyncio.timeout(FANOUT_TIMEOUT):
                await self.all_arrived
        except TimeoutError:
            pass
        finally:
            self.watch = None
            await self._close([trigger])
        arrivals = sorted(self.arrivals)
        result.missed += expected - len(arrivals)
        if not arrivals:
            return
        latencies = [t - trigger.t_connect_sent for t in arrivals]
        result.fanout_latencies += latencies
        result.rounds.append((latencies[0], latencies[len(latencies) // 2], latencies[-1]))
        result.delivery_rates.append(len(arrivals) / max(latencies[-1], 1e-6))

    async def _close(self, clients: list[Client]) -> None:
        for client in clients:
            client.close()
        pending = [c.lost for c in clients if not c.lost.done()]
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT + 1)
        for client in clients:
            if not client.lost.done():
                client.abort()
