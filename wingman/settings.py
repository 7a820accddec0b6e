"""Django settings for Wingman Gateway, read once from the environment (django-environ).

Precedence: defaults < ``wingman.config.json`` < environment (and ``.env``) < CLI flags
(the CLI exports its flags as ``WINGMAN_*`` variables before Django starts).
See ``wingman/config.py`` for the gateway keys and README.md for the variables.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
import redis.asyncio.retry
import redis.exceptions
import redis.retry
from redis.backoff import NoBackoff

from wingman import config as wingman_config
from wingman.database import database_config
from wingman.logs import log_format

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_dotenv = Path(env.str("WINGMAN_ENV_FILE", default=str(Path.cwd() / ".env")))
if _dotenv.is_file():
    environ.Env.read_env(_dotenv, overwrite=False)

WINGMAN = wingman_config.load()
STATE_DIR: Path = WINGMAN.state_dir
wingman_config.prepare_state_dir(STATE_DIR)


def _secret_key() -> str:
    """Use DJANGO_SECRET_KEY, else a per-install key kept in the state dir."""
    if env.str("DJANGO_SECRET_KEY", default=""):
        return env.str("DJANGO_SECRET_KEY")
    path = STATE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


# CORE ----------------------------------------------------------------------------------
SECRET_KEY = _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
_wildcard_bind = WINGMAN.host in ("0.0.0.0", "::")  # noqa: S104 - comparing, not binding
ALLOWED_HOSTS = (
    ["*"]
    if _wildcard_bind
    else [
        "localhost",
        "127.0.0.1",
        "[::1]",
        WINGMAN.host,
        *env.list("WINGMAN_ALLOWED_HOSTS", default=[]),
    ]
)

# No "daphne" app: it only swaps in its runserver and imports Twisted into every process
# (~25 MB); gateway/server/serve.py imports daphne itself when WINGMAN_ASGI_SERVER=daphne.
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "gateway",
    "agents",
    "routines",
    "webhooks",
    "rooms",
    "nodes",
]

MIDDLEWARE = [
    # first: an oversized body is a 413 before any middleware reads it (gateway/http_errors.py)
    "gateway.http_errors.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "wingman.urls"
# JSON for API and non-browser clients, as the 400/403/404/500 handlers in wingman/urls.py
CSRF_FAILURE_VIEW = "gateway.http_errors.csrf_failure"
ASGI_APPLICATION = "wingman.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASE ------------------------------------------------------------------------------
# SQLite needs WAL + IMMEDIATE transactions + a busy timeout to survive concurrent writers
# (design/reliability.md #6; https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-notes).
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
# A bad URL or a missing driver is a one-line config error (wingman/database.py).
DATABASES = {
    "default": database_config(env.str("DATABASE_URL", default=""), STATE_DIR / "wingman.sqlite3")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
# Persistent connections for both: every database call from async code (channels'
# database_sync_to_async) closes connections older than CONN_MAX_AGE before and after it, so
# with Django's default 0 each call opened a new connection (for SQLite: a file open plus
# the WAL pragmas; most of the CPU of accepting a webhook delivery).
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# PostgreSQL: Django's backend, its health check skipped for a connection that has just
# answered (gateway/state/postgresql/base.py: one statement fewer per database call).
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "gateway.state.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# CHANNELS & CACHE ----------------------------------------------------------------------
# Without REDIS_URL everything runs in this one process (in-memory layer, local-memory
# cache). With it, several gateway processes share state through Redis.
# redis-py 8's pool defaults (max_connections=100 that raises, socket_timeout == the
# layer's 5 s blocking read) crash consumers under load: design/performance.md.
REDIS_URL = env.str("REDIS_URL", default="")
REDIS_POOL_OPTIONS = {"max_connections": 2000, "socket_timeout": 15, "socket_connect_timeout": 5}


def _retry_once(retry_class):
    """After a Redis restart every pooled connection is stale and fails on first use: retry
    such a command once on a new connection (design/reliability.md #4). Not a timeout: a
    paused Redis must turn into UNAVAILABLE after one socket timeout, not two."""
    return retry_class(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "gateway.state.layer.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        **REDIS_POOL_OPTIONS,
                        "retry": _retry_once(redis.asyncio.retry.Retry),
                    }
                ],
                "prefix": env.str("WINGMAN_CHANNEL_PREFIX", default="wingman"),
                "capacity": 10_000,
                "expiry": 60,
                "group_expiry": 86_400,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("WINGMAN_CACHE_PREFIX", default="wingman"),
            # No blocking reads here (unlike the layer's 5 s BZPOPMIN): a paused Redis turns
            # into UNAVAILABLE after 5 s (WINGMAN_REDIS_TIMEOUT_SECONDS), not 15
            # (gateway/state/outage.py).
            "OPTIONS": {
                **REDIS_POOL_OPTIONS,
                "socket_timeout": env.float("WINGMAN_REDIS_TIMEOUT_SECONDS", default=5.0),
                "retry": _retry_once(redis.retry.Retry),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": 10_000},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "wingman",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# CELERY --------------------------------------------------------------------------------
# Embedded default: no broker server; tasks run in-process. Scaled: Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or env.str("CELERY_BROKER_URL", default=""))
CELERY_TIMEZONE = "UTC"
# Beat's DatabaseScheduler, deciding routines' due times with routines/schedules.py (DST).
CELERY_BEAT_SCHEDULER = "routines.scheduler:RoutineScheduler"
# How often beat re-reads changed PeriodicTasks at most (seconds).
CELERY_BEAT_MAX_LOOP_INTERVAL = env.float("WINGMAN_BEAT_MAX_LOOP_INTERVAL", default=5.0)
# Runs are long: a worker takes one task at a time per slot, acknowledges it when done, and
# a task whose worker died is delivered again (the run service claims a run once).
# https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# The queue the gateways send runs to and the workers take them from (one per deployment,
# or per test cluster sharing a Redis).
CELERY_TASK_DEFAULT_QUEUE = env.str("WINGMAN_CELERY_QUEUE", default="wingman")

# RUNS ----------------------------------------------------------------------------------
# Where agent runs execute: "local" (the gateway process's event loop; the embedded
# default) or "celery" (Celery workers; the default with REDIS_URL). A run whose executing
# process died is ended EXECUTOR_LOST and its session freed within this many seconds.
WINGMAN_RUN_EXECUTOR = env.str("WINGMAN_RUN_EXECUTOR", default="celery" if REDIS_URL else "local")
if WINGMAN_RUN_EXECUTOR not in ("local", "celery"):
    raise wingman_config.ConfigError(
        f"WINGMAN_RUN_EXECUTOR: expected local or celery, not {WINGMAN_RUN_EXECUTOR!r}"
    )
if WINGMAN_RUN_EXECUTOR == "celery" and CELERY_TASK_ALWAYS_EAGER:
    raise wingman_config.ConfigError(
        "WINGMAN_RUN_EXECUTOR=celery needs a broker the workers share: set REDIS_URL"
    )
WINGMAN_EXECUTOR_LOST_SECONDS = env.float("WINGMAN_EXECUTOR_LOST_SECONDS", default=30.0)

# WEBHOOKS ------------------------------------------------------------------------------
# POST /webhooks/<id> (webhooks/views.py): body limit (bytes; at most
# DATA_UPLOAD_MAX_MEMORY_SIZE, which every request has), accepted deliveries per minute per
# webhook unless the webhook sets its own, how long a rotated-out secret still verifies,
# the Standard Webhooks timestamp tolerance, the deepest JSON accepted, and the proxies
# whose X-Forwarded-For is believed (addresses/CIDRs; nobody else's: design/reliability.md #8).
WINGMAN_WEBHOOK_MAX_BODY_BYTES = env.int("WINGMAN_WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
WINGMAN_WEBHOOK_RATE_LIMIT = env.int("WINGMAN_WEBHOOK_RATE_LIMIT", default=60)
WINGMAN_WEBHOOK_SECRET_GRACE_SECONDS = env.int(
    "WINGMAN_WEBHOOK_SECRET_GRACE_SECONDS", default=24 * 3600
)
WINGMAN_WEBHOOK_SIGNATURE_TOLERANCE = env.int("WINGMAN_WEBHOOK_SIGNATURE_TOLERANCE", default=300)
WINGMAN_WEBHOOK_MAX_JSON_DEPTH = env.int("WINGMAN_WEBHOOK_MAX_JSON_DEPTH", default=64)
WINGMAN_WEBHOOK_TRUSTED_PROXIES = env.list("WINGMAN_WEBHOOK_TRUSTED_PROXIES", default=[])
# Refused deliveries' log lines kept per webhook (the newest; accepted ones are all kept).
WINGMAN_WEBHOOK_REFUSALS_KEPT = env.int("WINGMAN_WEBHOOK_REFUSALS_KEPT", default=1000)
# OpenClaw-compatible POST /hooks/agent and /hooks/wake: off unless a hooks token is set
# (WINGMAN_HOOKS_TOKEN, or "hooks": {"token": ...} in wingman.config.json).
WINGMAN_HOOKS_TOKEN = env.str(
    "WINGMAN_HOOKS_TOKEN", default=str((WINGMAN.raw.get("hooks") or {}).get("token") or "")
)
# ROUTINES ------------------------------------------------------------------------------
# The zone a routine's schedule is read in when it names none (IANA; UTC when unset).
WINGMAN_TIMEZONE = env.str("WINGMAN_TIMEZONE", default="UTC")
# A scheduled time that could not start for this long (beat down, gateway stopped) is
# skipped as too late; within it, one catch-up run starts (routines/services/fire.py).
WINGMAN_ROUTINES_STARTING_DEADLINE = env.float("WINGMAN_ROUTINES_STARTING_DEADLINE", default=300.0)
# After this many failed runs in a row a routine is disabled (and says why).
WINGMAN_ROUTINES_MAX_ERRORS = env.int("WINGMAN_ROUTINES_MAX_ERRORS", default=10)
# How long the per routine + scheduled time lock in the shared cache lives: longer than the
# starting deadline (a later fire is skipped as too late anyway; the database's unique
# record per routine and time backs it), short enough not to pile up keys.
WINGMAN_ROUTINES_LOCK_SECONDS = env.float("WINGMAN_ROUTINES_LOCK_SECONDS", default=900.0)
# The embedded scheduler (no REDIS_URL): `wingman gateway run` runs Celery beat's
# DatabaseScheduler itself. "auto": when there is no broker; "on"/"off" force it.
WINGMAN_ROUTINES_SCHEDULER = env.str("WINGMAN_ROUTINES_SCHEDULER", default="auto")
if WINGMAN_ROUTINES_SCHEDULER not in ("auto", "on", "off"):
    raise wingman_config.ConfigError(
        f"WINGMAN_ROUTINES_SCHEDULER: expected auto, on or off, not {WINGMAN_ROUTINES_SCHEDULER!r}"
    )

# REST FRAMEWORK ------------------------------------------------------------------------
# /api/: Bearer gateway token or per-user API token (gateway/api/authentication.py), or the
# browser's session with CSRF; auth mode none: the operator (loopback, same-site only).
# Service errors become 400/404/409 in gateway/api/exceptions.py.
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gateway.api.authentication.BearerAuthentication",
        "gateway.api.authentication.GatewaySessionAuthentication",
        "gateway.api.authentication.NoAuthModeAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "gateway.api.pagination.LimitOffset",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": [
        "gateway.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "gateway.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "gateway.api.schema.WingmanAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Wingman Gateway API",
    "DESCRIPTION": "REST API of the Wingman Gateway: agents, bindings, sessions and runs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ works offline: Swagger UI from the sidecar package's static files, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"PeerKindEnum": "agents.models.PeerKind.values"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "gateway.api.schema.strip_trailing_slashes",
    ],
}

# CONTROL UI ----------------------------------------------------------------------------
# Login: a Django user, or the gateway token/password (gateway/ui/views.py). The browser's
# WebSocket then authenticates with the session cookie, accepted only from an allowed
# Origin (gateway/security/webauth.py): the page's own origin or WINGMAN_ALLOWED_ORIGINS.
LOGIN_URL = "ui:login"
LOGIN_REDIRECT_URL = "ui:chat"
WINGMAN_ALLOWED_ORIGINS = env.list("WINGMAN_ALLOWED_ORIGINS", default=[])
CSRF_TRUSTED_ORIGINS = WINGMAN_ALLOWED_ORIGINS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# I18N / STATIC -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# where `manage.py collectstatic` writes (the container image collects into /app/static)
STATIC_ROOT = Path(env.str("WINGMAN_STATIC_ROOT", default=str(STATE_DIR / "static")))

# LOGGING -------------------------------------------------------------------------------
LOG_LEVEL = wingman_config.log_level(env.str("WINGMAN_LOG_LEVEL", default="INFO"))
# text (default) or json: one object per line for log shippers (wingman/logs.py)
LOG_FORMAT = log_format(env.str("WINGMAN_LOG_FORMAT", default="text"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "wingman.logs.JsonFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "daphne": {"level": "WARNING"},
        # uvicorn logs every WebSocket accept at INFO
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # httpx logs every request at INFO: a bridge client's (wingman agent/join over
        # /bridge/poll) long polls printed a line each on the terminal
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
