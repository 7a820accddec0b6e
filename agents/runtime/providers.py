"""Chat models from ``"provider:model"``: the built-in offline ``wingman`` provider, or any
LangChain provider through ``init_chat_model`` (installed as extras: openai, anthropic,
ollama). Problems become :class:`ModelError` with a message fit for the client."""

from __future__ import annotations

import os

from django.conf import settings
from langchain_core.language_models import BaseChatModel

from agents.runtime.offline import MODELS as OFFLINE_MODELS
from agents.runtime.offline import offline_model

OFFLINE_PROVIDER = "wingman"
DEFAULT_MODEL = "wingman:echo"

#: provider → (pip extra, environment variable holding the API key or None)
KNOWN_PROVIDERS = {
    "openai": ("openai", "OPENAI_API_KEY"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY"),
    "ollama": ("ollama", None),
}


class ModelError(Exception):
    """The model cannot be used; the message says why and what to do."""


def default_model() -> str:
    return os.environ.get("WINGMAN_DEFAULT_MODEL") or DEFAULT_MODEL


def _provider_options(provider: str) -> dict:
    """Per-provider options from ``providers.<name>`` in wingman.config.json and the env."""
    cfg = (settings.WINGMAN.raw.get("providers") or {}).get(provider) or {}
    options: dict = {}
    if provider == "openai":
        base_url = os.environ.get("OPENAI_BASE_URL") or cfg.get("baseUrl")
        if base_url:
            options["base_url"] = base_url
    elif provider == "ollama" and (os.environ.get("OLLAMA_HOST") or cfg.get("baseUrl")):
        options["base_url"] = os.environ.get("OLLAMA_HOST") or cfg.get("baseUrl")
    if cfg.get("apiKey") and provider in KNOWN_PROVIDERS:
        options["api_key"] = cfg["apiKey"]
    return options


def model_key(spec: str | None) -> tuple:
    """What :func:`resolve_model` builds ``spec``'s model from (the spec, the provider's
    options, its API key): equal keys give interchangeable models."""
    spec = (spec or "").strip() or default_model()
    provider = spec.partition(":")[0]
    if provider == OFFLINE_PROVIDER:
        return (spec,)
    key_var = KNOWN_PROVIDERS.get(provider, (None, None))[1]
    options = tuple(sorted(_provider_options(provider).items()))
    return (spec, options, os.environ.get(key_var) if key_var else None)


def resolve_model(spec: str | None) -> BaseChatModel:
    """A chat model for ``spec`` ("provider:model"; empty → the gateway default)."""
    spec = (spec or "").strip() or default_model()
    provider, sep, name = spec.partition(":")
    if not sep or not provider or not name:
        raise ModelError(
            f"model {spec!r} must look like 'provider:model' (e.g. openai:gpt-4o-mini)"
        )
    if provider == OFFLINE_PROVIDER:
        if name not in OFFLINE_MODELS:
            raise ModelError(
                f"unknown offline model {spec!r}; use one of: "
                + ", ".join(f"wingman:{m}" for m in OFFLINE_MODELS)
            )
        return offline_model(name)
    options = _provider_options(provider)
    key_var = KNOWN_PROVIDERS.get(provider, (None, None))[1]
    if key_var and not (os.environ.get(key_var) or options.get("api_key")):
        raise ModelError(f"provider {provider!r} needs an API key: set {key_var}")
    from langchain.chat_models import init_chat_model

    try:
        return init_chat_model(name, model_provider=provider, streaming=True, **options)
    except ImportError as exc:
        extra = KNOWN_PROVIDERS.get(provider, (provider,))[0]
        raise ModelError(
            f"provider {provider!r} is not installed: "
            f"pip install 'wingman-gateway[{extra}]' ({exc})"
        ) from exc
    except ValueError as exc:
        raise ModelError(f"unknown model provider {provider!r}: {exc}") from exc
    except Exception as exc:  # provider SDKs raise their own errors for bad config
        raise ModelError(f"cannot use model {spec!r}: {exc}") from exc
