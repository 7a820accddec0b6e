"""Helpers of the webhooks end-to-end tests: make a webhook in a running gateway's database
(the services, in a process with the gateway's environment) and post deliveries."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx

from tests.gateway.gateway_process import REPO, GatewayProcess

_CREATE = """
import json, sys
import django
django.setup()
from webhooks import services
webhook, secret = services.webhook_create(**json.loads(sys.argv[1]))
print("SECRET=" + secret)
"""


def create_webhook(gw: GatewayProcess, **fields: Any) -> str:
    """Create a webhook through ``webhook_create`` against ``gw``'s database; its secret."""
    fields.setdefault("agent_id", "main")
    done = subprocess.run(
        [sys.executable, "-c", _CREATE, json.dumps(fields)],
        env=gw.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return next(line for line in done.stdout.splitlines() if line.startswith("SECRET="))[7:]


def deliver(gw: GatewayProcess, webhook_id: str, payload: Any, secret: str, **kw: Any):
    """POST a delivery with the secret as a bearer token (gogcli's --hook-token)."""
    headers = {"Authorization": f"Bearer {secret}", **kw.pop("headers", {})}
    with httpx.Client(base_url=gw.http_url, timeout=10) as http:
        return http.post(f"/webhooks/{webhook_id}", json=payload, headers=headers, **kw)
