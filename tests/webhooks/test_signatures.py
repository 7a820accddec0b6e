"""Standard Webhooks signatures on POST /webhooks/<id>: valid, wrong, stale, future-dated,
replayed, rotated (old and new secret), several signatures in one header; and the sender
address behind trusted and untrusted proxies."""

from __future__ import annotations

import json
import time

import pytest
from channels.db import database_sync_to_async

from agents.models import Run
from agents.services.runs import run_wait
from tests.webhooks.conftest import counts, deliveries, make_webhook, post, signed_headers
from webhooks import secrets, services
from webhooks.inbound import client_address, networks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("hub_cleanup")]

BODY = json.dumps({"event": "push", "ref": "main"}).encode()


async def _post_signed(headers, body=BODY):
    return await post("/webhooks/hook", body=body, headers=headers)


async def test_a_valid_signature_is_enough_without_the_shared_secret():
    _, secret = await make_webhook(require_signature=True)
    response = await _post_signed(signed_headers(secret, BODY, msg_id="msg_1"))
    assert response.status_code == 202, response.content
    assert response.json()["deliveryId"] == "msg_1"
    [line] = await deliveries("hook")
    assert line.signed and line.delivery_id == "msg_1"


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("wrong-secret", "does not match"),
        ("wrong-body", "does not match"),
        ("stale", "too old"),
        ("future", "in the future"),
        ("no-timestamp", "incomplete"),
        ("bad-timestamp", "not a number"),
        ("v2-only", "does not match"),
    ],
)
async def test_bad_signatures_are_401_and_create_nothing(tamper, reason):
    _, secret = await make_webhook()
    now = int(time.time())
    if tamper == "wrong-secret":
        headers = signed_headers(secrets.generate(), BODY)
    elif tamper == "wrong-body":
        headers = signed_headers(secret, b'{"event": "other"}')
    elif tamper == "stale":
        headers = signed_headers(secret, BODY, ts=now - 301)
    elif tamper == "future":
        # (30 s past the tolerance: ``now`` is truncated and the request takes its time,
        # so +301 passed on a slow machine once the clock had moved a second on)
        headers = signed_headers(secret, BODY, ts=now + 330)
    elif tamper == "no-timestamp":
        headers = signed_headers(secret, BODY)
        del headers["webhook-timestamp"]
    elif tamper == "bad-timestamp":
        headers = {**signed_headers(secret, BODY), "webhook-timestamp": "soon"}
    else:
        headers = signed_headers(secret, BODY)
        headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    # the shared secret does not rescue a bad signature
    headers["X-Wingman-Secret"] = secret
    response = await _post_signed(headers)
    assert response.status_code == 401
    assert reason in response.json()["error"]
    assert await counts() == {"runs": 0, "messages": 0, "sessions": 1}
    [line] = await deliveries("hook")
    assert line.status == 401 and line.signed


async def test_within_the_tolerance_either_side_is_accepted():
    _, secret = await make_webhook()
    now = int(time.time())
    for ts in (now - 290, now + 290):
        response = await _post_signed(signed_headers(secret, BODY, ts=ts))
        assert response.status_code == 202


async def test_required_signature_refuses_the_shared_secret():
    _, secret = await make_webhook(require_signature=True)
    response = await post("/webhooks/hook", body=BODY, headers={"X-Wingman-Secret": secret})
    assert response.status_code == 401 and "required" in response.json()["error"]
    assert await counts() == {"runs": 0, "messages": 0, "sessions": 1}


async def test_a_replayed_delivery_gets_the_original_run_and_no_second_run():
    _, secret = await make_webhook()
    headers = signed_headers(secret, BODY, msg_id="msg_replay")
    first = await _post_signed(headers)
    assert first.status_code == 202
    await run_wait(first.json()["runId"], 10)
    before = await counts()
    again = await _post_signed(headers)
    assert again.status_code == 200
    assert again.json()["runId"] == first.json()["runId"] and again.json()["duplicate"] is True
    assert await counts() == before
    assert [d.status for d in await deliveries("hook")] == [202, 200]


async def test_concurrent_replays_start_one_run():
    import asyncio

    _, secret = await make_webhook(rate_limit=100)
    headers = signed_headers(secret, BODY, msg_id="msg_race")
    answers = await asyncio.gather(*(_post_signed(headers) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 202]
    assert len({a.json()["runId"] for a in answers}) == 1
    assert await Run.objects.acount() == 1


async def test_rotation_keeps_the_old_secret_valid_for_the_grace_period():
    webhook, old = await make_webhook()
    webhook, new = await database_sync_to_async(services.webhook_rotate_secret)(webhook=webhook)
    for secret in (old, new):
        assert (await _post_signed(signed_headers(secret, BODY))).status_code == 202
        shared = await post("/webhooks/hook", body=BODY, headers={"X-Wingman-Secret": secret})
        assert shared.status_code == 202
    # the grace period over: only the new secret
    await database_sync_to_async(type(webhook).objects.filter(pk=webhook.pk).update)(
        previous_secret_expires_at=webhook.previous_secret_expires_at.replace(year=2000)
    )
    assert (await _post_signed(signed_headers(old, BODY))).status_code == 401
    shared = await post("/webhooks/hook", body=BODY, headers={"X-Wingman-Secret": old})
    assert shared.status_code == 401
    assert (await _post_signed(signed_headers(new, BODY))).status_code == 202


async def test_several_signatures_in_one_header():
    _, secret = await make_webhook()
    headers = signed_headers(secret, BODY)
    good = headers["webhook-signature"]
    bogus = signed_headers(secrets.generate(), BODY, msg_id=headers["webhook-id"])
    headers["webhook-signature"] = f"{bogus['webhook-signature']} v1a,xyz {good}"
    assert (await _post_signed(headers)).status_code == 202
    headers = signed_headers(secret, BODY)
    headers["webhook-signature"] = f"{bogus['webhook-signature']} v1,AAAA"
    assert (await _post_signed(headers)).status_code == 401


# sender address --------------------------------------------------------------------------
def test_client_address_believes_only_trusted_proxies():
    trusted = networks(["10.0.0.1", "172.16.0.0/12"])
    # no trusted proxy: the peer, whatever X-Forwarded-For says
    assert client_address("203.0.113.9", "10.1.2.3", trusted) == "203.0.113.9"
    # a trusted proxy: the right-most address it did not add itself
    assert client_address("10.0.0.1", "10.1.2.3", trusted) == "10.1.2.3"
    # spoofed entries to the left of the real client never count
    assert client_address("10.0.0.1", "192.168.1.7, 203.0.113.9", trusted) == "203.0.113.9"
    # a chain of trusted proxies is skipped
    assert client_address("10.0.0.1", "198.51.100.4, 172.16.5.5", trusted) == "198.51.100.4"
    # garbage is no address
    assert client_address("10.0.0.1", "not-an-ip", trusted) == ""


async def test_allowlist_through_a_trusted_proxy(settings):
    settings.WINGMAN_WEBHOOK_TRUSTED_PROXIES = ["127.0.0.1"]
    _, secret = await make_webhook(ip_allowlist=["192.168.1.0/24"])
    headers = {"X-Wingman-Secret": secret}
    ok = await post("/webhooks/hook", {}, headers={**headers, "X-Forwarded-For": "192.168.1.7"})
    assert ok.status_code == 202
    # a client behind the proxy that writes the allowed address itself: the proxy appends
    # the real one, which is what counts
    spoofed = await post(
        "/webhooks/hook", {}, headers={**headers, "X-Forwarded-For": "192.168.1.7, 203.0.113.9"}
    )
    assert spoofed.status_code == 403
    lines = await deliveries("hook")
    assert lines[-1].source_ip == "203.0.113.9"


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(settings):
    settings.WINGMAN_WEBHOOK_TRUSTED_PROXIES = ["10.0.0.1"]
    _, secret = await make_webhook(ip_allowlist=["192.168.1.0/24"])
    response = await post(
        "/webhooks/hook",
        {},
        headers={"X-Wingman-Secret": secret, "X-Forwarded-For": "192.168.1.7"},
        remote="203.0.113.9",
    )
    assert response.status_code == 403
    assert await counts() == {"runs": 0, "messages": 0, "sessions": 1}
    [line] = await deliveries("hook")
    assert line.source_ip == "203.0.113.9"
