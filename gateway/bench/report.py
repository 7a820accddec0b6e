"""Figures from the raw samples of a run, the printed table and the ``--json`` object."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.bench.measure import RunResult

#: Targets from the issue, for 1000 connections on this machine.
FANOUT_P99_TARGET_MS = 50.0
CONNECT_RATIO_TARGET = 2.0
RSS_TARGET_MB = 150.0


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


@dataclass(frozen=True)
class Figure:
    """One row of the table: how to compute it from a run, and how to print it."""

    key: str
    label: str
    unit: str
    compute: Callable[[RunResult], float | None]
    decimals: int = 1


FIGURES = [
    Figure("connect_wall_s", "connect all N (wall)", "s", lambda r: r.connect_wall, 2),
    Figure("connect_p50_ms", "connect p50", "ms", lambda r: _ms(percentile(r.connect_times, 50))),
    Figure("connect_p99_ms", "connect p99", "ms", lambda r: _ms(percentile(r.connect_times, 99))),
    Figure("ping_p50_ms", "ping RTT p50", "ms", lambda r: _ms(percentile(r.ping_rtts, 50)), 2),
    Figure("ping_p99_ms", "ping RTT p99", "ms", lambda r: _ms(percentile(r.ping_rtts, 99)), 2),
    Figure("fanout_p50_ms", "fan-out p50", "ms", lambda r: _ms(percentile(r.fanout_latencies, 50))),
    Figure("fanout_p99_ms", "fan-out p99", "ms", lambda r: _ms(percentile(r.fanout_latencies, 99))),
    Figure(
        "deliveries_per_s",
        "fan-out deliveries/s",
        "/s",
        lambda r: percentile(r.delivery_rates, 50),
        0,
    ),
    Figure(
        "rss_mb",
        "server RSS (N connected)",
        "MB",
        lambda r: None if r.rss_bytes is None else r.rss_bytes / 2**20,
    ),
]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _target(limit: float, value: float | None, text: str, *, inclusive: bool) -> dict[str, Any]:
    verdict = None
    if value is not None:
        verdict = value <= limit if inclusive else value < limit
    return {"target": text, "limit": limit, "value": value, "pass": verdict}


def build(
    gateway: RunResult, baseline: RunResult | None, *, meta: dict[str, Any]
) -> dict[str, Any]:
    """The whole report as one JSON-ready object."""
    figures: dict[str, dict[str, Any]] = {}
    for fig in FIGURES:
        g = fig.compute(gateway)
        b = fig.compute(baseline) if baseline is not None else None
        figures[fig.key] = {"unit": fig.unit, "gateway": g, "baseline": b, "ratio": _ratio(g, b)}
    targets = {
        "fanout_p99_ms": _target(
            FANOUT_P99_TARGET_MS,
            figures["fanout_p99_ms"]["gateway"],
            f"< {FANOUT_P99_TARGET_MS:g} ms",
            inclusive=False,
        ),
        "connect_wall_ratio": _target(
            CONNECT_RATIO_TARGET,
            figures["connect_wall_s"]["ratio"],
            f"<= {CONNECT_RATIO_TARGET:.1f}x baseline",
            inclusive=True,
        ),
        "rss_mb": _target(
            RSS_TARGET_MB, figures["rss_mb"]["gateway"], f"< {RSS_TARGET_MB:g} MB", inclusive=False
        ),
    }
    runs = {"gateway": _run_info(gateway)}
    if baseline is not None:
        runs["baseline"] = _run_info(baseline)
    return {**meta, "figures": figures, "targets": targets, "runs": runs}


def _run_info(run: RunResult) -> dict[str, Any]:
    return {
        "connections": run.connections,
        "connected": run.connected,
        "failed": run.failed,
        "first_error": run.first_error,
        "pings": len(run.ping_rtts),
        "fanout_samples": len(run.fanout_latencies),
        "missed_deliveries": run.missed,
        "fanout_rounds_ms": [[round(t * 1000, 2) for t in r] for r in run.rounds],
        "rss_end_mb": None if run.rss_end_bytes is None else run.rss_end_bytes / 2**20,
    }


_TARGET_ROWS = {
    "fanout_p99_ms": "fanout_p99_ms",
    "connect_wall_s": "connect_wall_ratio",
    "rss_mb": "rss_mb",
}


def _fmt(value: float | None, fig: Figure) -> str:
    if value is None:
        return "unknown"
    return f"{value:,.{fig.decimals}f} {fig.unit}"


def table(report: dict[str, Any]) -> str:
    """The human-readable table."""
    rows = [("figure", "gateway", "baseline", "ratio", "target")]
    for fig in FIGURES:
        data = report["figures"][fig.key]
        ratio = "-" if data["ratio"] is None else f"{data['ratio']:.2f}x"
        target = ""
        if fig.key in _TARGET_ROWS:
            t = report["targets"][_TARGET_ROWS[fig.key]]
            verdict = "n/a" if t["pass"] is None else "PASS" if t["pass"] else "MISS"
            target = f"{t['target']}  {verdict}"
        baseline = _fmt(data["baseline"], fig) if "baseline" in report["runs"] else "-"
        rows.append((fig.label, _fmt(data["gateway"], fig), baseline, ratio, target))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:4], widths[1:4], strict=True)
        ]
        lines.append("  ".join([*cells, row[4]]).rstrip())
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join([_header(report), "", *lines, "", *_notes(report)])


def _header(report: dict[str, Any]) -> str:
    text = (
        f"wingman gateway bench: {report['connections']} connections to {report['url']}, "
        f"{report['pings']} pings, {report['broadcasts']} fan-out rounds"
    )
    if "baseline" in report["runs"]:
        hello = "with" if report["baseline_hello"] == "snapshot" else "without"
        text += f"\nbaseline: pure websockets, hello-ok {hello} the presence snapshot"
    return text


def _notes(report: dict[str, Any]) -> list[str]:
    notes = [
        "fan-out: from a trigger client sending `connect` to each client receiving the "
        "`presence` event it causes; deliveries/s = clients reached / time to the last one "
        "(median of rounds)",
        "connect: TCP open to hello-ok per connection; RSS: all N connected, after 1 s idle; "
        "ratio = gateway / baseline",
    ]
    for name, run in report["runs"].items():
        if run["failed"]:
            notes.append(f"{name}: {run['failed']} connections failed ({run['first_error']})")
        if run["missed_deliveries"]:
            notes.append(f"{name}: {run['missed_deliveries']} fan-out deliveries never arrived")
    return notes
