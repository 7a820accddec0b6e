"""One validation for a run's input: the WebSocket ``agent`` method (through the consumer on
the real ASGI app) and ``POST /api/runs`` (its input serializer) accept and refuse the same
bodies."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from agents.api.serializers import RunCreateInput
from tests.agents.conftest import acreate_agent, agent_call

pytestmark = pytest.mark.django_db(transaction=True)

BODIES = [
    {"message": "hi"},
    {"message": 123},
    {"message": True},
    {"message": ["hi"]},
    {"message": {"text": "hi"}},
    {"message": None},
    {"message": "   "},
    {"message": "x" * 200_001},
    {"message": "hi", "timeout": 0},
    {"message": "hi", "timeout": "5"},
    {"message": "hi", "queue": "sometimes"},
    {"message": "hi", "agentId": 5},
    {"message": "hi", "idempotencyKey": 7},
    {"message": "hi", "routing": {"channel": "slack", "peer": {"kind": "dm", "id": 1}}},
    {"message": "hi", "routing": {"channel": "slack", "peer": {"kind": "dm", "id": "u1"}}},
    {"message": "hi", "prompt": "typo"},
]


def rest_accepts(body: dict) -> bool:
    return RunCreateInput(data=body).is_valid()


async def test_websocket_and_rest_accept_the_same_run_input(clients):
    await acreate_agent("main", is_default=True)
    c = clients()
    await c.handshake()
    verdicts = []
    for body in BODIES:
        ack, _, final, _ = await agent_call(c, body)  # an accepted run is read to its end
        assert ack["ok"] or ack["error"]["code"] == "INVALID_REQUEST", (body, ack)
        assert not ack["ok"] or final["ok"], (body, final)
        verdicts.append((body, ack["ok"], await sync_to_async(rest_accepts)(body)))
    disagree = [(str(body)[:80], ws, rest) for body, ws, rest in verdicts if ws != rest]
    assert not disagree, f"(body, websocket accepts, REST accepts): {disagree}"
    assert [ws for _, ws, _ in verdicts].count(True) == 3  # "hi", timeout "5", routing
