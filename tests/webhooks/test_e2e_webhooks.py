"""End to end against the real server: a delivery is answered 202 at once, the run streams
to a subscribed WebSocket client, the thread holds the user message and the answer; the
same in the scaled setup (Redis, PostgreSQL, the request on another gateway than the
subscriber, the run in a Celery worker); SIGKILL between the 202 and the run."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tests.agents import test_e2e_agents
from tests.agents.e2e_runs import run_row, stream_text
from tests.agents.test_e2e_agents import (
    RUN_TIMEOUT,
    check_events,
    events_until_terminal,
    write_agents_config,
)
from tests.agents.test_e2e_scaled import executed_by, scaled_cluster
from tests.gateway.gateway_process import connected
from tests.webhooks.e2e import create_webhook, deliver

pytestmark = [pytest.mark.e2e]

shared_database = test_e2e_agents.shared_database  # a fixture: a fresh PostgreSQL database

ECHO_MAIN = [{"id": "main", "default": True, "model": "wingman:echo"}]


async def _watch_delivery(subscriber, poster_gw, *, webhook_id: str, secret: str, n: int):
    """Post ``/stream n`` to the webhook (from ``poster_gw``) while ``subscriber`` follows
    the thread; (202 body, the run's events, the thread's history)."""
    key = f"agent:main:webhook:{webhook_id}"
    await subscriber.ok("sessions.subscribe", {"sessionKey": key})
    await subscriber.ok("subscribe", {"events": ["webhook"]})
    response = await asyncio.to_thread(
        deliver, poster_gw, webhook_id, {"prompt": f"/stream {n}"}, secret
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["ok"] is True and body["sessionKey"] == key and body["deliveryId"]
    announced = await subscriber.next_event(
        "webhook", where=lambda f: f["payload"]["runId"] == body["runId"], timeout=RUN_TIMEOUT
    )
    assert announced["payload"]["webhookId"] == webhook_id
    assert announced["payload"]["id"] == body["deliveryId"]
    events = await events_until_terminal(subscriber, body["runId"])
    history = await subscriber.ok("chat.history", {"sessionKey": key})
    return body, events, history


async def test_delivery_runs_and_streams_to_a_subscriber(gateway_factory, tmp_path: Path):
    write_agents_config(tmp_path / "gw", ECHO_MAIN)
    gw = gateway_factory(name="gw", state_dir=tmp_path / "gw")
    secret = create_webhook(gw, name="CI")
    async with connected(gw, name="watcher") as watcher:
        body, events, history = await _watch_delivery(
            watcher, gw, webhook_id="ci", secret=secret, n=6
        )
        check_events(events, run_id=body["runId"], terminal="agent-complete")
        # the user's message reached the subscriber as it was accepted
        user = [f for f in watcher.received if f.get("event") == "session.message"]
        assert [f["payload"]["message"]["content"] for f in user] == ["/stream 6"], [
            f.get("event") for f in watcher.received
        ]
    assert [(m["role"], m["content"]) for m in history["messages"]] == [
        ("user", "/stream 6"),
        ("assistant", stream_text(6)),
    ]


@pytest.mark.redis
@pytest.mark.postgres
async def test_scaled_request_on_one_gateway_run_in_a_worker_watched_on_another(
    gateway_factory, worker_factory, shared_database: str, tmp_path: Path
):
    # one SECRET_KEY for the cluster: every gateway can verify signatures (webhooks/secrets.py)
    secret_key = {"DJANGO_SECRET_KEY": f"key-{uuid.uuid4().hex}"}
    with scaled_cluster(
        gateway_factory,
        worker_factory,
        shared_database,
        tmp_path,
        prefix="wmhooks",
        agents=ECHO_MAIN,
        extra_env=secret_key,
    ) as cluster:
        a, b, worker = cluster.a, cluster.b, cluster.worker
        secret = create_webhook(a, name="Deploys")
        async with connected(b, name="watcher@B") as watcher:
            body, events, history = await _watch_delivery(
                watcher, a, webhook_id="deploys", secret=secret, n=5
            )
        check_events(events, run_id=body["runId"], terminal="agent-complete")
        executed_by(run_row(shared_database, body["runId"]), worker)
        assert [(m["role"], m["content"]) for m in history["messages"]] == [
            ("user", "/stream 5"),
            ("assistant", stream_text(5)),
        ]
