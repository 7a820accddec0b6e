"""The method registry: every dialect calls methods by name through here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.protocol.base import Frame
from gateway.protocol.system import NoParams
from gateway.rpc.context import CallContext
from gateway.security import scopes

Handler = Callable[[CallContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    params: type[Frame]
    handler: Handler
    #: Callable before authentication (jsonrpc allows only ``ping`` and ``auth``).
    public: bool = False
    #: The scope a caller needs (``gateway/security/scopes.py``).
    scope: str = scopes.READ


class Registry:
    """Name → :class:`Method`. ``features.methods`` in ``hello-ok`` is :meth:`names`."""

    def __init__(self) -> None:
        self._methods: dict[str, Method] = {}

    def method(
        self,
        name: str,
        params: type[Frame] = NoParams,
        *,
        public: bool = False,
        scope: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a handler. ``scope``: what a caller needs; omitted, it is derived from the
        name (:func:`~gateway.security.scopes.default_scope`: read verbs → ``operator.read``,
        anything else → ``operator.write``)."""
        needed = scope or scopes.default_scope(name)
        if needed not in scopes.ALL_SCOPES:
            raise ValueError(f"method {name!r}: unknown scope {needed!r}")

        def register(handler: Handler) -> Handler:
            if name in self._methods:
                raise ValueError(f"method {name!r} registered twice")
            self._methods[name] = Method(name, params, handler, public, needed)
            return handler

        return register

    def get(self, name: str) -> Method | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def all(self) -> list[Method]:
        return [self._methods[n] for n in self.names()]


registry = Registry()
