"""The agent-stream bench's table: every round, the medians and the verdicts, for the
embedded gateway and (with ``--scaled``) the scaled setup."""

from __future__ import annotations

from typing import Any

_VERDICT = {True: "PASS", False: "MISS"}
_HEAD = (
    f"{'round':<7}{'side':<9}{'chunks/s':>10}{'in-process':>12}{'ratio':>8}"
    f"{'p50 / p99 ms':>16}{'in-proc p99':>13}{'added p99':>11}"
)


def _row(name: str, side: str, pair: dict[str, Any], local: dict[str, Any]) -> str:
    g = pair["gateway"]
    return (
        f"{name:<7}{side:<9}{g['chunks_per_s']:>10,.0f}{local['chunks_per_s']:>12,.0f}"
        f"{pair['rate_ratio']:>7.2f}x{g['latency_p50_ms']:>8.3f} / {g['latency_p99_ms']:<6.3f}"
        f"{local['latency_p99_ms']:>13.3f}{pair['added_p99_ms']:>11.3f}"
    )


def _verdicts(name: str, summary: dict[str, Any], target_ms: float) -> list[str]:
    targets = summary["targets"]
    return [
        f"{name} adds {summary['added_p99_ms']:.3f} ms at p99 (median; target < {target_ms:g} "
        f"ms): {_VERDICT[targets[f'added_p99_under_{target_ms:g}ms']]}",
        f"{name} keeps {summary['rate_ratio']:.0%} of the in-process chunk rate (median; "
        f"target >= 50%): {_VERDICT[targets['rate_at_least_half']]}",
    ]


def table(report: dict[str, Any], *, embedded_ms: float, scaled_ms: float) -> str:
    """The printed report."""
    scaled = report.get("scaled")
    lines = [
        f"wingman gateway bench --mode agent-stream: {report['chunks']} chunks x "
        f"{report['streams']} stream(s) x {len(report['rounds'])} rounds, agent "
        f"{report['agent']!r}",
    ]
    if scaled:
        lines.append(
            f"scaled: gateway {scaled['url']} + Celery worker -P {scaled['pool']} "
            f"-c {scaled['concurrency']} (database: {scaled['database']}), worker RSS "
            f"{scaled['worker_rss_mb']} MB after the rounds"
        )
    lines += [_HEAD, "-" * len(_HEAD)]
    for i, run in enumerate(report["rounds"], 1):
        lines.append(_row(str(i), "embedded", run, run["in_process"]))
        if scaled:
            lines.append(_row(str(i), "scaled", run["scaled"], run["in_process"]))
    lines.append(_row("median", "embedded", report, report["in_process"]))
    if scaled:
        lines.append(_row("median", "scaled", scaled, report["in_process"]))
    lines += ["", *_verdicts("the gateway", report, embedded_ms)]
    if scaled:
        lines += _verdicts("the scaled setup (run in a worker)", scaled, scaled_ms)
    lines.append(
        "latency = arrival - production time stamped by the model (time.time_ns, same machine)"
    )
    return "\n".join(lines)
