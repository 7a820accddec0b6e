"""POST /webhooks/<id> through the real ASGI app: every status in the issue's order, and
nothing (no run, message or session) created on any refusal; only the delivery log line."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from agents.models import Message, Run, Session
from agents.services.runs import run_wait
from tests.webhooks.conftest import counts, deliveries, make_webhook, post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

#: What a refused delivery leaves: no run, no message, only the webhook's own thread
#: (created with the webhook, empty).
NOTHING = {"runs": 0, "messages": 0, "sessions": 1}


async def test_accepted_delivery_starts_one_run_in_the_webhook_thread():
    webhook, secret = await make_webhook(name="CI Alerts", event_label="build")
    response = await post(
        "/webhooks/ci-alerts", {"status": "failed", "job": 7}, headers={"X-Wingman-Secret": secret}
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["ok"] is True and body["sessionKey"] == "agent:main:webhook:ci-alerts"
    assert body["deliveryId"].startswith("dlv_")
    run = await run_wait(body["runId"], 10)
    assert run is not None and run.status == "ok"
    session = await Session.objects.aget(key=body["sessionKey"])
    assert session.name == "Webhook: CI Alerts"
    messages = [m async for m in Message.objects.filter(session=session).order_by("position")]
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[0].content.startswith('Webhook "CI Alerts" triggered (build)')
    assert '"job": 7' in messages[0].content and "EXTERNAL_UNTRUSTED_CONTENT" in messages[0].content
    assert run.extra_system_prompt  # the untrusted-content note
    [line] = await deliveries("ci-alerts")
    assert (
        line.status == 202
        and line.run_id == run.id
        and line.payload == {"status": "failed", "job": 7}
    )
    await database_sync_to_async(webhook.refresh_from_db)()
    assert webhook.last_triggered_at is not None


@pytest.mark.parametrize(
    "how",
    ["header", "bearer", "query"],
)
async def test_the_secret_may_come_three_ways(how):
    _, secret = await make_webhook()
    path, headers = "/webhooks/hook", {}
    if how == "header":
        headers = {"X-Wingman-Secret": secret}
    elif how == "bearer":
        headers = {"Authorization": f"Bearer {secret}"}
    else:
        path += f"?secret={secret.replace('+', '%2B').replace('/', '%2F').replace('=', '%3D')}"
    response = await post(path, {"prompt": "hello"}, headers=headers)
    assert response.status_code == 202, response.content
    run = await Run.objects.aget(pk=response.json()["runId"])
    assert run.prompt == "hello"  # a prompt field is used as-is


async def _refused(path, expected, reason_part, *, logged=True, **kwargs):
    response = await post(path, **kwargs)
    assert response.status_code == expected, response.content
    body = response.json()
    assert body["ok"] is False and reason_part in body["error"]
    assert await counts() == NOTHING
    lines = await deliveries("hook")
    if logged:
        assert (
            lines[-1].status == expected and lines[-1].run_id is None and lines[-1].payload is None
        )
    return response


async def test_405_for_other_methods_before_anything_else():
    await make_webhook()
    response = await _refused("/webhooks/hook", 405, "only POST", method="get")
    assert response.headers["Allow"] == "POST"
    assert (await post("/webhooks/nothing", method="put")).status_code == 405


async def test_404_unknown_is_not_logged():
    await make_webhook()
    await _refused("/webhooks/nothing", 404, "no webhook", logged=False, payload={})
    assert await deliveries("hook") == []


async def test_403_disabled_before_the_secret_is_checked():
    await make_webhook(enabled=False)
    await _refused("/webhooks/hook", 403, "disabled", payload={})


@pytest.mark.parametrize(
    ("headers", "query", "reason"),
    [
        ({}, "", "no secret"),
        ({"X-Wingman-Secret": "whsec_wrong"}, "", "wrong secret"),
        ({"Authorization": "Bearer nope"}, "", "wrong secret"),
        ({"Authorization": "Basic abc"}, "", "no secret"),
        ({}, "?secret=nope", "wrong secret"),
    ],
)
async def test_401_without_the_right_secret(headers, query, reason):
    await make_webhook()
    response = await _refused(f"/webhooks/hook{query}", 401, reason, payload={}, headers=headers)
    assert "WWW-Authenticate" in response.headers


async def test_403_address_not_in_the_allowlist():
    _, secret = await make_webhook(ip_allowlist=["10.0.0.0/8", "192.168.1.7"])
    headers = {"X-Wingman-Secret": secret}
    await _refused(
        "/webhooks/hook", 403, "not allowed", payload={}, headers=headers, remote="127.0.0.1"
    )
    ok = await post("/webhooks/hook", {}, headers=headers, remote="10.20.30.40")
    assert ok.status_code == 202
    ok = await post("/webhooks/hook", {}, headers=headers, remote="192.168.1.7")
    assert ok.status_code == 202


async def test_401_comes_before_403_allowlist():
    await make_webhook(ip_allowlist=["10.0.0.0/8"])
    await _refused("/webhooks/hook", 401, "no secret", payload={}, remote="127.0.0.1")


async def test_413_over_the_body_limit(settings):
    settings.WINGMAN_WEBHOOK_MAX_BODY_BYTES = 1024
    _, secret = await make_webhook()
    big = json.dumps({"x": "a" * 2000}).encode()
    await _refused(
        "/webhooks/hook", 413, "over 1024", body=big, headers={"X-Wingman-Secret": secret}
    )


async def test_default_body_limit_is_256_kib():
    _, secret = await make_webhook()
    headers = {"X-Wingman-Secret": secret}
    big = json.dumps({"x": "a" * (256 * 1024)}).encode()
    await _refused("/webhooks/hook", 413, "over 262144", body=big, headers=headers)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"a": ', "application/json", "malformed JSON"),
        (b"[" * 100 + b"]" * 100, "application/json", "nested deeper"),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", "nested deeper"),
        (b"[" * 50_000, "text/plain", "nested deeper"),
        (b"\xff\xfe\x00", "text/plain", "not UTF-8"),
    ],
    ids=["malformed", "deep", "very-deep", "very-deep-text", "binary"],
)
async def test_400_bad_bodies(body, content_type, reason):
    _, secret = await make_webhook()
    headers = {"X-Wingman-Secret": secret}
    await _refused(
        "/webhooks/hook", 400, reason, body=body, content_type=content_type, headers=headers
    )


async def test_text_bodies_are_accepted_as_text():
    _, secret = await make_webhook(name="Form")
    response = await post(
        "/webhooks/form",
        body=b"name=Ada&msg=hi {not json",
        content_type="text/plain",
        headers={"X-Wingman-Secret": secret},
    )
    assert response.status_code == 202
    run = await Run.objects.aget(pk=response.json()["runId"])
    assert "name=Ada&msg=hi {not json" in run.prompt
    [line] = await deliveries("form")
    assert line.payload == "name=Ada&msg=hi {not json"


async def test_429_over_the_rate_limit_with_retry_after():
    _, secret = await make_webhook(rate_limit=2)
    headers = {"X-Wingman-Secret": secret}
    for _ in range(2):
        accepted = await post("/webhooks/hook", {}, headers=headers)
        assert accepted.status_code == 202
        assert await run_wait(accepted.json()["runId"], 10) is not None
    before = await counts()
    response = await post("/webhooks/hook", {}, headers=headers)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert await counts() == before
    assert [d.status for d in await deliveries("hook")] == [202, 202, 429]


async def test_refused_deliveries_do_not_count_against_the_rate_limit():
    _, secret = await make_webhook(rate_limit=1)
    for _ in range(3):
        assert (
            await post("/webhooks/hook", {}, headers={"X-Wingman-Secret": "bad"})
        ).status_code == 401
    assert (
        await post("/webhooks/hook", {}, headers={"X-Wingman-Secret": secret})
    ).status_code == 202


async def test_a_disabled_agent_refuses_with_409_and_creates_nothing():
    from agents.models import Agent

    _, secret = await make_webhook()
    await Agent.objects.filter(pk="main").aupdate(enabled=False)
    await _refused(
        "/webhooks/hook", 409, "disabled", payload={}, headers={"X-Wingman-Secret": secret}
    )


async def test_target_session_receives_the_run():
    from agents.models import Agent

    await make_webhook(name="other")  # creates agent main
    agent = await Agent.objects.aget(pk="main")
    await Session.objects.acreate(key="agent:main:main", agent=agent, name="My chat")
    _, secret = await make_webhook(name="Into chat", session_key="agent:main:main")
    response = await post(
        "/webhooks/into-chat", {"message": "ping"}, headers={"X-Wingman-Secret": secret}
    )
    assert response.status_code == 202
    assert response.json()["sessionKey"] == "agent:main:main"
    assert (await Session.objects.aget(key="agent:main:main")).name == "My chat"


async def test_gog_gmail_delivery_with_the_hook_token():
    from tests.webhooks.test_prompts import SEVERAL

    _, secret = await make_webhook(name="Gmail", preset="gog-gmail")
    response = await post("/webhooks/gmail", SEVERAL, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 202
    run = await Run.objects.aget(pk=response.json()["runId"])
    assert "Message 3 of 3" in run.prompt and "Subject: Invoice 42" in run.prompt
    [line] = await deliveries("gmail")
    assert line.payload == SEVERAL  # the raw payload, kept with the run's user message


async def test_refused_log_lines_are_bounded_accepted_ones_kept(settings):
    settings.WINGMAN_WEBHOOK_REFUSALS_KEPT = 3
    _, secret = await make_webhook()
    assert (
        await post("/webhooks/hook", {}, headers={"X-Wingman-Secret": secret})
    ).status_code == 202
    for _ in range(6):
        await post("/webhooks/hook", {}, headers={"X-Wingman-Secret": "wrong"})
    lines = await deliveries("hook")
    assert [d.status for d in lines] == [202, 401, 401, 401]


async def test_a_body_over_the_request_cap_is_413_before_anything(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    settings.WINGMAN_WEBHOOK_MAX_BODY_BYTES = 1024
    _, secret = await make_webhook()
    response = await post("/webhooks/hook", body=b"x" * 5000, headers={"X-Wingman-Secret": secret})
    assert response.status_code == 413 and response.json()["ok"] is False
    assert await deliveries("hook") == []  # over the hard cap the body is not even kept
    assert await counts() == NOTHING


async def test_an_unsigned_delivery_with_a_webhook_id_is_deduplicated():
    _, secret = await make_webhook()
    headers = {"X-Wingman-Secret": secret, "webhook-id": "evt_42"}
    first = await post("/webhooks/hook", {"a": 1}, headers=headers)
    again = await post("/webhooks/hook", {"a": 1}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["deliveryId"] == "evt_42" == again.json()["deliveryId"]
    assert await Run.objects.acount() == 1
