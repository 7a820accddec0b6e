"""The gateway's side of mDNS: announce when ``discovery.enabled`` with method ``mdns``
(config or ``--discovery mdns``) once the listening port is known, withdraw at shutdown.
``gateway/server/common.py`` calls :func:`start` and :func:`withdraw`.

python-zeroconf is imported only when discovery is on: importing it costs a process ~14 MB
of RSS, which a gateway that does not announce should not pay."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.discovery.mdns import Announcer

_current: Announcer | None = None


def capabilities() -> list[str]:
    """The method families this gateway serves (``agent``, ``sessions``, ...)."""
    from gateway.rpc.registry import registry

    return sorted({name.split(".")[0] for name in registry.names()})


def start(host: str, port: int) -> Announcer | None:
    """Announce this gateway over mDNS if configured to; None otherwise."""
    global _current
    from django.conf import settings

    cfg = settings.WINGMAN
    if not (cfg.discovery.enabled and cfg.discovery.method == "mdns") or _current is not None:
        return None
    from gateway.discovery.mdns import Announcer, service_info, txt_properties
    from wingman import __version__

    tls = getattr(cfg, "tls", None)
    transport = "wss" if tls is not None and tls.on else "ws"
    props = txt_properties(
        version=__version__,
        auth=cfg.auth_mode,
        transport=transport,
        capabilities=capabilities(),
        path="/ws",
    )
    name = cfg.discovery.name or cfg.name
    _current = Announcer(service_info(name, host, port, props)).start()
    return _current


async def withdraw() -> None:
    """Take the announcement back (goodbye packets); bounded, never raises."""
    global _current
    announcer, _current = _current, None
    if announcer is None:
        return
    from gateway.discovery.mdns import WITHDRAW_SECONDS

    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.to_thread(announcer.withdraw), WITHDRAW_SECONDS * 2)
