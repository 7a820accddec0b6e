"""OpenClaw-compatible POST /hooks/agent and /hooks/wake: off without a hooks token, the
token in a header only, OpenClaw's answers, runs through the run service."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from agents.models import Run, Session
from agents.services.runs import run_wait
from tests.webhooks.conftest import counts, post
from tests.webhooks.conftest import make_agent as _make_agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

TOKEN = "hooks-token-0123456789abcdef"
NOTHING = {"runs": 0, "messages": 0, "sessions": 0}


@pytest.fixture
def hooks_on(settings, db):
    settings.WINGMAN_HOOKS_TOKEN = TOKEN
    _make_agent("main")


async def test_hooks_are_off_without_a_token():
    await database_sync_to_async(_make_agent)("main")
    response = await post(
        "/hooks/agent", {"message": "hi"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 404 and response.json()["ok"] is False
    assert await counts() == NOTHING


@pytest.mark.usefixtures("hooks_on")
async def test_agent_runs_with_bearer_or_openclaw_header():
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"x-openclaw-token": TOKEN}):
        response = await post(
            "/hooks/agent",
            {"message": "Summarise the inbox", "name": "Email", "sessionKey": "hook:email:1"},
            headers=headers,
        )
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["ok"] is True and body["runId"]
        assert body["sessionKey"] == "agent:main:hook:hook:email:1"
        run = await run_wait(body["runId"], 10)
        assert run.status == "ok" and run.prompt == "Summarise the inbox"
    session = await Session.objects.aget(key="agent:main:hook:hook:email:1")
    assert session.name == "Hook: Email"


@pytest.mark.usefixtures("hooks_on")
@pytest.mark.parametrize(
    ("path", "kwargs", "status", "error"),
    [
        ("/hooks/agent", {"payload": {"message": "x"}}, 401, "Unauthorized"),
        (
            "/hooks/agent",
            {"payload": {"message": "x"}, "headers": {"x-openclaw-token": "nope"}},
            401,
            "Unauthorized",
        ),
        (f"/hooks/agent?token={TOKEN}", {"payload": {"message": "x"}}, 400, "query string"),
        ("/hooks/agent", {"payload": {"message": ""}, "auth": True}, 400, "message required"),
        ("/hooks/agent", {"body": b"{nope", "auth": True}, 400, "invalid JSON"),
        (
            "/hooks/agent",
            {"payload": {"message": "x", "timeoutSeconds": -1}, "auth": True},
            400,
            "timeoutSeconds",
        ),
        (
            "/hooks/agent",
            {"payload": {"message": "x", "agentId": "ghost"}, "auth": True},
            400,
            "ghost",
        ),
        (
            "/hooks/agent",
            {
                "payload": {"message": "x", "agentId": "other", "sessionKey": "agent:main:main"},
                "auth": True,
            },
            409,
            "contradicts",
        ),
        (
            "/hooks/agent",
            {"body": b'{"message": "' + b"a" * 300_000 + b'"}', "auth": True},
            413,
            "Too Large",
        ),
        ("/hooks/wake", {"payload": {"mode": "now"}, "auth": True}, 400, "text required"),
        ("/hooks/wake", {"payload": {"text": "x", "mode": "later"}, "auth": True}, 400, "mode"),
        (
            "/hooks/wake",
            {"payload": {"text": "x"}, "method": "put", "auth": True},
            405,
            "Not Allowed",
        ),
    ],
)
async def test_refusals_answer_like_openclaw_and_create_nothing(path, kwargs, status, error):
    if kwargs.pop("auth", False):
        kwargs["headers"] = {"Authorization": f"Bearer {TOKEN}"}
    response = await post(path, **kwargs)
    assert response.status_code == status, response.content
    assert response.json()["ok"] is False and error in response.json()["error"]
    assert await counts() == NOTHING


@pytest.mark.usefixtures("hooks_on")
async def test_idempotency_key_gives_the_same_run():
    headers = {"Authorization": f"Bearer {TOKEN}"}
    payload = {"message": "once", "idempotencyKey": "abc"}
    first = await post("/hooks/agent", payload, headers=headers)
    second = await post("/hooks/agent", payload, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["runId"] == second.json()["runId"]
    assert await Run.objects.acount() == 1


@pytest.mark.usefixtures("hooks_on")
async def test_wake_runs_in_the_main_session():
    response = await post(
        "/hooks/wake", {"text": "New email received"}, headers={"x-openclaw-token": TOKEN}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True and body["mode"] == "now"
    run = await run_wait(body["runId"], 10)
    assert run.status == "ok" and "New email received" in run.prompt
    assert (
        await Run.objects.select_related("session").aget(pk=run.id)
    ).session.key == "agent:main:main"
