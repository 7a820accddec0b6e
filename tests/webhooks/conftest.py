"""Fixtures for the webhooks tests: an agent on the offline model, webhooks, and a client
posting to the real ASGI endpoint in-process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import httpx
import pytest
from channels.db import database_sync_to_async

from agents.models import Agent, Message, Run, Session
from agents.services.runs import local
from gateway.delivery.hub import reset_hub

# The end-to-end fixtures (real gateway subprocesses, logs attached to failures).
from tests.gateway.conftest import (  # noqa: F401
    gateway,
    gateway_factory,
    pytest_runtest_makereport,
    worker_factory,
)
from webhooks import secrets, services
from webhooks.models import Delivery


def make_agent(agent_id: str = "main") -> Agent:
    return Agent.objects.create(id=agent_id, model="wingman:echo")


@database_sync_to_async
def make_webhook(**fields):
    """(webhook, secret); the agent ``main`` is created when missing."""
    if not Agent.objects.filter(pk=fields.get("agent_id", "main")).exists():
        make_agent(fields.get("agent_id", "main"))
    fields.setdefault("name", "Hook")
    fields.setdefault("agent_id", "main")
    return services.webhook_create(**fields)


@database_sync_to_async
def counts() -> dict[str, int]:
    """What a delivery can create: runs, messages, sessions (and the log lines)."""
    return {
        "runs": Run.objects.count(),
        "messages": Message.objects.count(),
        "sessions": Session.objects.count(),
    }


@database_sync_to_async
def deliveries(webhook_id: str) -> list[Delivery]:
    return list(Delivery.objects.filter(webhook_id=webhook_id).order_by("id"))


def signed_headers(secret: str, body: bytes, *, msg_id: str | None = None, ts: int | None = None):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": secrets.sign(secret, msg_id, ts, body),
    }


async def post(
    path: str,
    payload=None,
    *,
    body: bytes | None = None,
    headers: dict | None = None,
    content_type: str = "application/json",
    remote: str = "127.0.0.1",
    method: str = "post",
) -> httpx.Response:
    """A request to the real ASGI application (wingman/asgi.py), from ``remote``."""
    from wingman.asgi import application

    transport = httpx.ASGITransport(app=application, client=(remote, 50123))
    data = body if body is not None else json.dumps(payload or {}).encode()
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(
            method.upper(),
            path,
            content=None if method in ("get", "head") else data,
            headers={"Content-Type": content_type, **(headers or {})},
        )


@pytest.fixture
async def hub_cleanup():
    """Let the runs a test started end, then stop the hub (a run ending after the hub
    stopped would start another one on a loop about to close)."""
    yield
    runs = local.here()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            while runs.active:
                await asyncio.gather(*(a.done.wait() for a in list(runs.active.values())))
    await asyncio.sleep(0.05)  # the runs' last events leave
    await reset_hub()
