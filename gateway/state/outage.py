"""Redis outages, told apart from bugs.

With ``REDIS_URL`` set, the channel layer, presence, rate limits and run locks live in
Redis. When it stops answering (killed, paused, restarting) that is expected, not a bug:

- it is logged once when it starts (one line, no traceback) and once when it ends;
- a request that needs it is answered ``UNAVAILABLE`` with ``retryable: true`` and the
  socket stays open; an HTTP endpoint answers JSON 503 (``/health``: ``degraded``);
- the hub keeps retrying and puts everything back (groups, presence) when it answers.

Anything else stays a bug: logged with its traceback where it happens.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit, urlunsplit

import redis.exceptions
from django.http import HttpResponse

from gateway.protocol.errors import ErrorCode, GatewayError

logger = logging.getLogger("wingman.outage")

#: What a Redis client raises when the server is gone or does not answer in time (and the
#: OS-level errors a half-open connection surfaces as).
ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)
#: How long a client should wait before retrying a request refused during an outage.
RETRY_AFTER_MS = 1000


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, ERRORS)


def reason(exc: BaseException) -> str:
    """One line: the exception's type and message."""
    text = " ".join(str(exc).split()) or "no answer"
    return f"{type(exc).__name__}: {text}"


def unavailable(exc: BaseException) -> GatewayError:
    """The error a request gets when Redis is unreachable."""
    return GatewayError(
        ErrorCode.UNAVAILABLE,
        f"Redis is unreachable ({reason(exc)}); try again",
        retryable=True,
        retry_after_ms=RETRY_AFTER_MS,
    )


def logged(response: HttpResponse) -> HttpResponse:
    """Mark a 5xx response as logged: the tracker logs the outage once, Django would log
    every such response as an error."""
    response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log
    return response


def safe_url(url: str) -> str:
    """``url`` without its password (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def probe(url: str, timeout: float = 2.0) -> str | None:
    """None when the Redis at ``url`` answers a PING within ``timeout``, else why not.
    Raises ValueError for a URL that is not a Redis URL."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        return reason(exc)
    finally:
        client.close()
    return None


def quiet_unretrieved(loop) -> None:
    """Log an outage error of a task nobody awaits (channels-redis starts its own, e.g.
    ``_clean_receive_backup``) like the rest of the outage, not as a traceback."""
    previous = loop.get_exception_handler()
    if getattr(previous, "wingman_outage", False):
        return

    def handle(loop, context) -> None:
        exc = context.get("exception")
        if exc is not None and is_outage(exc):
            redis_state.failed(exc, "in a channel-layer background task")
        elif previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    handle.wingman_outage = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handle)


class Tracker:
    """Is Redis down? Logs the start of an outage and its end once each."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.last_reason = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException, doing: str) -> None:
        """A Redis call failed while ``doing`` something (e.g. "storing presence")."""
        self.last_reason = reason(exc)
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "Redis unreachable (%s) while %s; requests get UNAVAILABLE until it answers",
                self.last_reason,
                doing,
            )
        else:
            logger.debug("Redis still unreachable while %s: %s", doing, self.last_reason)

    def known_down(self, why: str) -> None:
        """Redis is down and that was already said (e.g. at start-up): record it quietly."""
        self.last_reason = why
        if self.down_since is None:
            self.down_since = time.monotonic()

    def answered(self) -> bool:
        """A Redis call succeeded; True when that ends an outage."""
        if self.down_since is None:
            return False
        logger.info("Redis reachable again after %.1f s", time.monotonic() - self.down_since)
        self.down_since = None
        return True


#: This process's view of Redis.
redis_state = Tracker()
