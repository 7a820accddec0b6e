"""Prometheus exposition (prometheus_client formats; the figures come from the hub)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.delivery.hub import Hub


class _HubCollector:
    def __init__(self, hub: Hub, cluster_connections: int | None) -> None:
        self.hub = hub
        self.cluster_connections = cluster_connections

    def collect(self):
        s = self.hub.stats
        yield GaugeMetricFamily(
            "wingman_uptime_seconds",
            "Seconds since this gateway process started",
            s.uptime_ms / 1000,
        )
        yield GaugeMetricFamily(
            "wingman_start_time_seconds", "Unix time this process started", s.started_at
        )
        yield GaugeMetricFamily(
            "wingman_connections",
            "Authenticated connections on this process",
            self.hub.established_count,
        )
        yield GaugeMetricFamily(
            "wingman_sockets", "Open sockets on this process (any state)", len(self.hub.connections)
        )
        if self.cluster_connections is not None:  # None: Redis is unreachable
            yield GaugeMetricFamily(
                "wingman_cluster_connections",
                "Authenticated connections on all processes",
                self.cluster_connections,
            )
        yield CounterMetricFamily(
            "wingman_messages_processed", "Inbound frames processed", s.messages_processed
        )
        yield CounterMetricFamily(
            "wingman_frames_rejected", "Inbound frames answered with an error", s.frames_rejected
        )
        yield CounterMetricFamily(
            "wingman_events_delivered", "Event frames sent to clients", s.events_delivered
        )
        yield CounterMetricFamily(
            "wingman_events_dropped",
            "Droppable events (tick, presence) not sent to slow consumers",
            s.events_dropped,
        )
        yield CounterMetricFamily(
            "wingman_connections_opened", "Sockets opened since start", s.connections_total
        )
        gc = self.hub.collector
        yield CounterMetricFamily(
            "wingman_gc_collections",
            "Full garbage collections run after sockets closed and runs ended (delivery/memory.py)",
            gc.collections,
        )
        yield CounterMetricFamily(
            "wingman_gc_seconds", "Time spent in those collections", gc.seconds
        )
        yield CounterMetricFamily(
            "wingman_gc_objects_freed", "Objects those collections freed", gc.freed
        )


def render(hub: Hub, *, cluster_connections: int | None) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_HubCollector(hub, cluster_connections))
    return generate_latest(registry), CONTENT_TYPE_LATEST
