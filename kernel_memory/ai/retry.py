"""Retry policy for calls to model services: backoff with jitter, server delays honoured.

Only transient failures are retried: errors of this package marked `transient`
(such as `TransientError` for 429, 408, 409, 5xx, time-outs and connection errors,
as the adapters translate them) and the built-in `TimeoutError` and `ConnectionError`.
Everything else propagates on the first attempt, so a 400 or a 401 costs one request.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import TypeVar

from kernel_memory.errors import (
    InvalidRequestError,
    KernelMemoryError,
    PayloadTooLargeError,
    PermanentError,
    ThrottledError,
    TransientError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Upper bound for any single wait, whether computed or requested by the server.
DEFAULT_MAX_DELAY_SECONDS = 60.0

# Statuses worth another attempt: time-out, conflict (OpenAI returns 409 for a
# request that raced another one), too early, throttling and server errors.
TRANSIENT_STATUS_CODES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Read the delay a service asked for, in seconds, or None when it named none.

    Headers are checked in order of precision: `retry-after-ms` (OpenAI),
    `x-ms-retry-after-ms` (Azure), then `Retry-After` as seconds or an HTTP date.
    A malformed or negative value is skipped in favour of the next header.
    `headers` must look names up case-insensitively, as httpx and `http.client` do.
    """
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        milliseconds = _parse_non_negative_float(headers.get(name))
        if milliseconds is not None:
            return milliseconds / 1000.0

    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _parse_non_negative_float(value)
    if seconds is not None:
        return seconds
    return _seconds_until_http_date(value, now=time.time() if now is None else now)


def _parse_non_negative_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _seconds_until_http_date(value: str, *, now: float) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # HTTP dates are always GMT (RFC 9110), so a date marked "-0000" is read as UTC too.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def error_for_status(
    status_code: int,
    message: str,
    *,
    service: str,
    retry_after: float | None = None,
) -> KernelMemoryError:
    """Translate an HTTP error status from `service` into this package's error type.

    Args:
        status_code: The HTTP status the service returned.
        message: The service's own error message, kept so the caller sees the cause.
        service: Name of the service for the message, such as "Azure OpenAI embeddings".
        retry_after: Delay the service requested, from `retry_after_seconds`.
    """
    text = f"{service} returned HTTP {status_code}: {message}"
    if status_code in (429, 503):
        return ThrottledError(text, retry_after=retry_after)
    if status_code in TRANSIENT_STATUS_CODES or status_code >= 500:
        return TransientError(text, retry_after=retry_after)
    if status_code == 413:
        return PayloadTooLargeError(text)
    if status_code in (400, 422):
        return InvalidRequestError(text)
    if status_code in (401, 403):
        return PermanentError(f"{text}. Check the API key, or the role assignment when using an identity")
    if status_code == 404:
        return PermanentError(f"{text}. Check the endpoint, the model or deployment name and the API version")
    return PermanentError(text)


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, KernelMemoryError):
        return error.transient
    return isinstance(error, (TimeoutError, ConnectionError))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter that honours the delay a service requests.

    Attempt n (counting retries from 1) waits `initial_delay * multiplier**(n-1)`,
    capped at `max_delay`, then shortened by up to `jitter` of itself at random so
    that many workers throttled together do not return together. A delay the
    server sent replaces the computed one, capped at `max_delay` as well.
    """

    max_retries: int = 6
    initial_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = DEFAULT_MAX_DELAY_SECONDS
    # Fraction of the computed delay removed at random (0 disables jitter).
    jitter: float = 0.5
    # Injectable for tests: the sleep function, the source of randomness in [0, 1)
    # and the wall clock that turns a `Retry-After` HTTP date into seconds.
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay_for(self, retry_number: int, error: BaseException) -> float:
        """Compute the wait in seconds before retry number `retry_number` (1-based)."""
        requested = getattr(error, "retry_after", None)
        if requested is not None:
            return min(float(requested), self.max_delay)
        computed = min(self.initial_delay * self.multiplier ** (retry_number - 1), self.max_delay)
        return computed * (1.0 - self.jitter * self.random())

    async def run(self, operation: Callable[[], Awaitable[T]], *, description: str) -> T:
        """Await `operation()` until it succeeds, fails permanently or runs out of retries.

        Args:
            operation: Called anew for every attempt, so it must not reuse a consumed request.
            description: What the call does, for the log lines ("embeddings for 16 texts").

        Raises:
            The last error when it is permanent or when `max_retries` retries were spent.
        """
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await operation()
            except Exception as error:
                if not _is_retryable(error):
                    raise
                if attempt == attempts:
                    logger.error("%s failed after %d attempts: %s", description, attempts, _reason(error))
                    raise
                delay = self.delay_for(attempt, error)
                logger.warning(
                    "%s failed on attempt %d of %d, retrying in %.2f s: %s",
                    description,
                    attempt,
                    attempts,
                    delay,
                    _reason(error),
                )
                await self.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
