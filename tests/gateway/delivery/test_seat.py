"""A process's seat hands what arrives on its channel to the hub, telling it which envelope
ends what arrived together (the hub then writes its sockets' coalesced frames out at once:
a batch that came in one message is not held for a window)."""

from __future__ import annotations

import asyncio

from gateway.delivery.encoded import ENVELOPE_TYPE
from gateway.delivery.seat import Seat


def _envelope(n: int) -> dict:
    return {"type": ENVELOPE_TYPE, "event": "agent", "payload": f'{{"n":{n}}}', "origin": "x"}


async def test_the_last_envelope_of_each_message_is_marked_last_in_order() -> None:
    got: list[tuple[str, bool]] = []
    arrived = asyncio.Event()

    async def on_envelope(message: dict, last: bool) -> None:
        got.append((message["payload"], last))
        if len(got) == 4:
            arrived.set()

    seat = Seat(on_envelope=on_envelope)
    await seat.start()
    try:
        await seat.layer.send(seat.channel_name, _envelope(0))
        batch = [_envelope(1), _envelope(2), _envelope(3)]
        await seat.layer.send(seat.channel_name, {"type": ENVELOPE_TYPE, "batch": batch})
        await asyncio.wait_for(arrived.wait(), 5)
    finally:
        await seat.stop()
    assert got == [('{"n":0}', True), ('{"n":1}', False), ('{"n":2}', False), ('{"n":3}', True)]
