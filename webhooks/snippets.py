"""Ready-to-paste commands for a webhook (Control UI, CLI): a ``curl`` delivery and the
gogcli Gmail watcher's command line pointed at the endpoint. A secret no longer shown is
written ``<secret>``."""

from __future__ import annotations

import shlex

PLACEHOLDER = "<secret>"


def curl_command(url: str, secret: str | None) -> str:
    """A delivery with ``curl`` (the secret as a bearer token, a JSON ``message``)."""
    auth = f"Authorization: Bearer {secret or PLACEHOLDER}"
    return (
        f"curl -X POST {shlex.quote(url)} -H {shlex.quote(auth)} "
        "-H 'Content-Type: application/json' "
        """-d '{"message": "Hello from curl"}'"""
    )


def gog_command(url: str, secret: str | None) -> str:
    """``gog gmail watch serve`` posting each Gmail push to the endpoint (``--hook-token``
    is sent as ``Authorization: Bearer``); the account and the Pub/Sub push token are the
    user's to fill in."""
    token = shlex.quote(secret) if secret else PLACEHOLDER
    return (
        "gog gmail watch serve --account you@gmail.com --bind 127.0.0.1 --port 8788 "
        "--path /gmail-pubsub --token <pubsub-push-token> "
        f"--hook-url {shlex.quote(url)} --hook-token {token} "
        "--include-body --max-bytes 20000"
    )
