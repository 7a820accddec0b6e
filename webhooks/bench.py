"""The webhooks ``wingman gateway bench --mode webhook`` posts to: made for the run on an
agent of the offline model, removed afterwards with their threads (once their runs ended)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from agents.models import Agent, Run, Session
from agents.runtime.providers import default_model
from agents.services.runs.accept import OPEN_STATUSES
from gateway.bench.client import BenchError
from webhooks import services

#: The bench's deliveries must never reach a paid model.
OFFLINE_PREFIX = "wingman:"
DRAIN_SECONDS = 300.0


def _check_agent(agent_id: str) -> None:
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise BenchError(f"no agent {agent_id!r} (--agent)")
    model = agent.model or default_model()
    if not model.startswith(OFFLINE_PREFIX):
        raise BenchError(
            f"agent {agent_id!r} uses {model!r}: the webhook bench "
            "starts a run per delivery, so it needs an agent on the offline model (wingman:echo)"
        )


@contextmanager
def bench_webhooks(*, agent_id: str, count: int) -> Iterator[list[tuple[str, str]]]:
    """``count`` webhooks of ``agent_id`` without a rate limit to speak of: (path, secret)
    each. Afterwards waits for their runs to end, then deletes them and their threads."""
    _check_agent(agent_id)
    tag = uuid.uuid4().hex[:8]
    made = [
        services.webhook_create(
            id=f"bench-{tag}-{i}", name=f"bench {tag} {i}", agent_id=agent_id, rate_limit=10**9
        )
        for i in range(count)
    ]
    keys = [webhook.thread_key for webhook, _ in made]
    try:
        yield [(f"/webhooks/{webhook.id}", secret) for webhook, secret in made]
    finally:
        deadline = time.monotonic() + DRAIN_SECONDS
        open_runs = Run.objects.filter(session__key__in=keys, status__in=OPEN_STATUSES)
        while open_runs.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        for webhook, _ in made:
            services.webhook_delete(webhook=webhook)
        Session.objects.filter(key__in=keys).delete()
