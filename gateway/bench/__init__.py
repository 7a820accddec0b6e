"""``wingman gateway bench``: measure a running gateway against a pure-``websockets`` baseline.

- ``cli.py`` — arguments, defaults from settings, orchestration (``run_bench``).
- ``measure.py`` — the measuring client: N connections driven by websockets' Sans-I/O
  protocol from one asyncio process, and the connect / ping / fan-out measurements.
- ``baseline.py`` — the minimal pure-``websockets`` server (``python -m gateway.bench.baseline``).
- ``report.py`` — the figures, the table and the JSON object.

Nothing in this package except ``cli.py`` imports Django: the baseline must stay pure.
"""
