"""What every dialect codec provides, and the dialect-neutral objects it decodes into.

A dialect only translates frames. The connection (``gateway/ws/connection.py``) works on
:class:`Hello` and :class:`Call` and never looks at which dialect produced them.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from gateway.protocol.errors import ErrorCode, GatewayError


def now_ms() -> int:
    """Unix time in milliseconds (the protocol's timestamps)."""
    return int(time.time() * 1000)


_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> str:
    """Compact JSON for the wire, non-ASCII kept.

    orjson: ~0.3 µs for an ``agent-stream`` event payload against ~3.4 µs for the standard
    encoder, and an agent stream publishes one event per model token. What orjson refuses
    (non-string keys, integers wider than 64 bits) gets the standard encoder's answer."""
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return _json_dumps(obj)


#: What orjson may not read exactly (it reads an integer past 64 bits as a float): a run of
#: 20 digits, or 19 after a minus (below -2**63); 19 digits alone (e.g. a nanosecond
#: timestamp, 1.8e18) are within its unsigned 64 bits. Found with every digit made a zero and
#: two substring searches (0.5-1.3 us for a frame; a regular expression took 3-12 us,
#: several times orjson's own time). UTF-8 never puts an ASCII byte inside another character.
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
_MINUS_NINETEEN_DIGITS = b"-" + b"0" * 19


def _may_overflow(data: bytes) -> bool:
    zeros = data.translate(_DIGITS_AS_ZEROS)
    return _TWENTY_DIGITS in zeros or _MINUS_NINETEEN_DIGITS in zeros


def loads(data: str | bytes) -> Any:
    """JSON text as the standard decoder reads it (every integer exact), with orjson where
    that reads the same (a frame: 1.2-1.5x the standard decoder's speed, the check
    included). Raises ``orjson.JSONDecodeError`` (a ``ValueError``) for what orjson refuses:
    not JSON, ``NaN``, more than 1024 levels."""
    value = orjson.loads(data)  # refuses what is not UTF-8 (a lone surrogate): encode() can't
    if not _may_overflow(data if isinstance(data, bytes) else data.encode()):
        return value
    try:
        return json.loads(data)
    except RecursionError:  # orjson's depth limit is above the interpreter's
        raise orjson.JSONDecodeError("depth limit exceeded", "", 0) from None


@dataclass(slots=True)
class ClientIdentity:
    """Who is on the other end, as the client described itself."""

    client_id: str
    version: str | None = None
    platform: str | None = None
    device_family: str | None = None
    mode: str | None = None
    instance_id: str | None = None
    display_name: str | None = None
    role: str = "operator"
    scopes: list[str] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    #: A node's declared command surface and permissions (``role: "node"``).
    commands: list[str] = field(default_factory=list)
    permissions: dict[str, bool] = field(default_factory=dict)
    path_env: str | None = None
    #: The verified device id (``connect.params.device``), set by the handshake.
    device_id: str | None = None
    #: How the connection authenticated: ``shared`` (gateway secret, browser session or auth
    #: none) or ``device-token``; set by the handshake.
    credential: str = "shared"

    @property
    def node_id(self) -> str:
        """A node's id: its device id (OpenClaw), else its instance id or client id."""
        return self.device_id or self.instance_id or self.client_id

    @property
    def node_topic(self) -> str:
        """The topic a ``role: "node"`` connection receives its invokes on."""
        return node_topic(self.node_id)


def node_topic(node_id: str) -> str:
    """The topic of a node's own connection (``node.invoke.request`` goes there)."""
    return f"node:{node_id}"


@dataclass(slots=True)
class Hello:
    """A handshake/authentication request in any dialect."""

    request_id: Any
    client: ClientIdentity
    token: str | None = None
    password: str | None = None
    min_protocol: int | None = None
    max_protocol: int | None = None
    #: The handshake is also this call (wingman-node ``register``): its reply replaces
    #: ``hello-ok``.
    call: Call | None = None
    #: ``connect.params.device`` (a ``gateway.protocol.handshake.DeviceIdentity``), if sent.
    device: Any = None


@dataclass(slots=True)
class Call:
    """A method call in any dialect."""

    request_id: Any
    method: str
    params: dict[str, Any] | None


class FrameError(Exception):
    """A frame the dialect could not accept: reply with ``error`` to ``request_id``.

    ``close`` is the close code to use after the reply (``None`` keeps the socket open).
    """

    def __init__(self, request_id: Any, error: GatewayError, close: int | None = None) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error
        self.close = close


def invalid(request_id: Any, exc: ValidationError | str, close: int | None = None) -> FrameError:
    """An INVALID_REQUEST FrameError with the first validation problem spelled out."""
    if isinstance(exc, str):
        return FrameError(request_id, GatewayError(ErrorCode.INVALID_REQUEST, exc), close)
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "frame"
    return FrameError(
        request_id,
        GatewayError(
            ErrorCode.INVALID_REQUEST,
            f"invalid frame: {where}: {first['msg']}",
            details={"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in errors[:10]]},
        ),
        close,
    )


class Dialect(ABC):
    """One wire dialect: detection, decoding and encoding. Stateless; one instance each."""

    name: ClassVar[str]
    #: Events a connection receives without subscribing.
    default_events: ClassVar[frozenset[str]]
    #: True when the first frame must be a handshake (``Hello``).
    handshake_first: ClassVar[bool] = True
    #: Calls before the handshake never establish the connection (even with auth off): only
    #: public methods answer, others get ``UNAUTHORIZED`` (wingman-node: register first).
    hello_required: ClassVar[bool] = False
    #: The error message of a call that needs the handshake first.
    before_hello: ClassVar[str] = "authenticate first (method: auth)"

    @staticmethod
    @abstractmethod
    def matches(frame: dict[str, Any]) -> bool:
        """Does this first frame belong to the dialect?"""

    @abstractmethod
    def decode(self, frame: dict[str, Any], *, first: bool) -> Hello | Call:
        """Turn a frame into a Hello or a Call, or raise :class:`FrameError`."""

    @abstractmethod
    def request_id_of(self, frame: Any) -> Any:
        """The id to echo when a frame cannot be decoded at all."""

    @abstractmethod
    def encode_result(self, request_id: Any, payload: Any) -> str | None:
        """A successful reply (None: this dialect sends none, e.g. to a ``pong``)."""

    @abstractmethod
    def encode_error(self, request_id: Any, error: GatewayError) -> str:
        """An error reply."""

    @abstractmethod
    def encode_hello_ok(self, request_id: Any, hello: dict[str, Any]) -> str:
        """The reply to a successful handshake."""

    def encode_hello_error(self, request_id: Any, error: GatewayError) -> str:
        """The reply to a failed handshake (default: a plain error reply)."""
        return self.encode_error(request_id, error)

    @abstractmethod
    def event_template(
        self, event: str, payload_json: str, state_version_json: str | None, ts: int
    ) -> tuple[str, ...]:
        """The parts of an event frame that are the same for every connection (cached)."""

    def splice(self, template: tuple[str, ...], seq: int, event: Any, request: Any) -> str | None:
        """One connection's frame: by default ``prefix + seq + suffix`` (``request``: the
        connection's request this event answers, if any; None: the dialect has no frame for
        this event and the connection skips it)."""
        return f"{template[0]}{seq}{template[1]}"

    def encode_followup(self, request_id: Any, payload: Any) -> str | None:
        """A second reply to the same request (``agent``'s final result); None = not sent."""
        return self.encode_result(request_id, payload)
