"""mDNS / DNS-SD with python-zeroconf: the gateway announces ``_wingman-gateway._tcp.local.``
and ``wingman gateway discover`` browses for it.

- :class:`Announcer` registers the service (name, port, addresses, TXT: one ``key=value``
  string per key — ``version``, ``auth``, ``transport`` ws|wss, ``capabilities``, ``path``)
  on a thread of its own, so the server's event loop never waits for mDNS probing; and
  withdraws it (goodbye packets, TTL 0) on :meth:`Announcer.withdraw`.
- :func:`browse` listens for ``seconds`` and returns every gateway resolved in that
  time (one per service name; a service withdrawn meanwhile is dropped), or with ``first``
  the first one resolved, as soon as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
from dataclasses import asdict, dataclass

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger("wingman.discovery")

SERVICE_TYPE = "_wingman-gateway._tcp.local."
#: Seconds the withdrawal (goodbye packets) may take at shutdown.
WITHDRAW_SECONDS = 2.0
#: Seconds to resolve one found service (its SRV, TXT and address records).
RESOLVE_MS = 3000


@dataclass(frozen=True)
class FoundGateway:
    """One gateway found by mDNS."""

    name: str
    host: str
    port: int
    url: str
    auth: str
    version: str
    transport: str
    capabilities: list[str]
    server: str

    @property
    def auth_required(self) -> bool:
        return self.auth != "none"

    def as_json(self) -> dict:
        return {**asdict(self), "authRequired": self.auth_required}


def txt_properties(
    *, version: str, auth: str, transport: str, capabilities: list[str], path: str
) -> dict[str, str]:
    """The TXT strings (one key each); capabilities comma-joined, kept under 255 bytes."""
    caps = ",".join(capabilities)
    while len(caps.encode()) > 240 and "," in caps:
        caps = caps.rsplit(",", 1)[0]
    return {
        "version": version,
        "auth": auth,
        "transport": transport,
        "capabilities": caps,
        "path": path,
    }


def announced_addresses(host: str) -> list[str]:
    """The addresses to publish: the bound one, or every IPv4 address for a bind-all host."""
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all address, not a bind
        return [host]
    import ifaddr

    found = [
        ip.ip
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
        if isinstance(ip.ip, str) and not ipaddress.ip_address(ip.ip).is_link_local
    ]
    return found or ["127.0.0.1"]


def service_info(name: str, host: str, port: int, properties: dict[str, str]) -> ServiceInfo:
    """The DNS-SD record set of a gateway called ``name`` on ``host:port``."""
    label = name.replace(".", "-")[:63]
    server = f"{socket.gethostname().split('.')[0] or 'wingman'}.local."
    return ServiceInfo(
        SERVICE_TYPE,
        f"{label}.{SERVICE_TYPE}",
        port=port,
        properties=properties,
        server=server,
        parsed_addresses=announced_addresses(host),
    )


class Announcer:
    """Registers one service on a background thread; :meth:`withdraw` takes it back."""

    def __init__(self, info: ServiceInfo) -> None:
        self.info = info
        self._zc: Zeroconf | None = None
        self._registered = threading.Event()
        self._thread = threading.Thread(target=self._register, name="mdns-announce", daemon=True)

    def start(self) -> Announcer:
        self._thread.start()
        return self

    def _register(self) -> None:
        try:
            self._zc = Zeroconf(ip_version=IPVersion.V4Only)
            self._zc.register_service(self.info, allow_name_change=True)
        except Exception as exc:  # the gateway serves on without being announced
            logger.warning("mDNS announcement failed: %s", exc)
            return
        self._registered.set()
        print(f"  mDNS: announced as '{self.info.name}'", flush=True)

    def wait_registered(self, timeout: float) -> bool:
        return self._registered.wait(timeout)

    def withdraw(self) -> None:
        """Send goodbyes for the service and close the responder (bounded)."""
        self._thread.join(timeout=WITHDRAW_SECONDS)
        zc = self._zc
        if zc is None:
            return
        with contextlib.suppress(Exception):
            if self._registered.is_set():
                zc.unregister_service(self.info)
        with contextlib.suppress(Exception):
            zc.close()
        self._zc = None


def _found(info: AsyncServiceInfo) -> FoundGateway | None:
    addresses = info.parsed_addresses(IPVersion.V4Only) or info.parsed_addresses()
    if not addresses or not info.port:
        return None
    props = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else "")
        for k, v in (info.properties or {}).items()
    }
    transport = props.get("transport") or "ws"
    host = addresses[0]
    shown = f"[{host}]" if ":" in host else host
    path = props.get("path") or "/"
    return FoundGateway(
        name=info.name.removesuffix(f".{SERVICE_TYPE}"),
        host=host,
        port=info.port,
        url=f"{transport}://{shown}:{info.port}{path}",
        auth=props.get("auth") or "unknown",
        version=props.get("version") or "",
        transport=transport,
        capabilities=[c for c in (props.get("capabilities") or "").split(",") if c],
        server=info.server or "",
    )


async def browse(seconds: float, *, first: bool = False) -> list[FoundGateway]:
    """Every gateway that answers within ``seconds``, sorted by name; with ``first``, only the
    first one resolved, returned as soon as it is (``wingman gateway join --auto-discover``)."""
    azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    found: dict[str, FoundGateway] = {}
    pending: set[asyncio.Task] = set()
    resolved = asyncio.Event()

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if await info.async_request(azc.zeroconf, RESOLVE_MS):
            gateway = _found(info)
            if gateway is not None and not (first and found):
                found[name] = gateway
                resolved.set()

    def on_change(zeroconf, service_type, name, state_change) -> None:
        if state_change is ServiceStateChange.Removed:
            found.pop(name, None)
            return
        task = asyncio.ensure_future(resolve(name))
        pending.add(task)
        task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(azc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    try:
        if first:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(resolved.wait(), seconds)
        else:
            await asyncio.sleep(seconds)
    finally:
        for task in list(pending):
            task.cancel()
        await browser.async_cancel()
        await azc.async_close()
    return sorted(found.values(), key=lambda g: (g.name, g.url))
