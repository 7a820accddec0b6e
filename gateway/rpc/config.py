"""``config.get`` (the effective configuration, secrets redacted) and ``config.schema`` (the
config file's JSON schema), which the OpenClaw CLI's ``gateway probe`` reads."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

from gateway.protocol.dialects.base import dumps
from gateway.protocol.system import ConfigGetParams, NoParams
from gateway.rpc.context import CallContext
from gateway.rpc.registry import registry
from gateway.security import scopes
from wingman.config import ConfigFile

REDACTED = "__REDACTED__"
#: Keys whose values are never sent (any depth, case-insensitive).
SECRET_KEYS = frozenset({"token", "password", "apikey", "api_key", "secret", "authorization"})


def redact(value: Any) -> Any:
    """``value`` with every secret-looking key's value replaced by :data:`REDACTED`."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in SECRET_KEYS and v else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def effective_config() -> dict[str, Any]:
    """The file's content with the resolved gateway values (environment and flags applied)."""
    cfg = settings.WINGMAN
    raw = dict(cfg.raw or {})
    gateway = dict(raw.get("gateway") or {})
    gateway.update(
        {
            "name": cfg.name,
            "host": cfg.host,
            "port": cfg.port,
            "auth": {"mode": cfg.auth_mode, "token": cfg.token, "password": cfg.password},
            "controlUi": cfg.control_ui.model_dump(by_alias=True),
            "policy": cfg.policy.model_dump(by_alias=True),
        }
    )
    raw["gateway"] = gateway
    return redact(raw)


@registry.method("config.get", ConfigGetParams, scope=scopes.READ)
async def config_get(ctx: CallContext, params: ConfigGetParams) -> dict[str, Any]:
    """The effective configuration, redacted (no token, password or API key)."""
    config = effective_config()
    path = settings.WINGMAN.config_path
    return {
        "path": str(path) if path else None,
        "exists": bool(path and path.exists()),
        "valid": True,
        "config": config,
        "hash": hashlib.sha256(dumps(config).encode()).hexdigest(),
        "issues": [],
    }


@registry.method("config.schema", NoParams, scope=scopes.READ)
async def config_schema(ctx: CallContext, params: NoParams) -> dict[str, Any]:
    """The JSON schema of ``wingman.config.json``."""
    return {"schema": ConfigFile.model_json_schema(by_alias=True), "uiHints": {}}
