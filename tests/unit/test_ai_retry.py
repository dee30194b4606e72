"""Retry policy: server delay headers, backoff, and which errors are retried."""

from __future__ import annotations

import email.utils

import pytest

from kernel_memory.ai.retry import RetryPolicy, error_for_status, retry_after_seconds
from kernel_memory.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    PermanentError,
    ThrottledError,
    TransientError,
)


class RecordingSleep:
    """Stands in for asyncio.sleep and keeps the requested delays."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FailingOperation:
    """Raises the scripted errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_after_ms_header():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5


def test_retry_after_azure_ms_header():
    assert retry_after_seconds({"x-ms-retry-after-ms": "250"}) == 0.25


def test_retry_after_seconds_header():
    assert retry_after_seconds({"retry-after": "7"}) == 7.0


def test_retry_after_http_date_header():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30.0)


def test_retry_after_past_http_date_is_zero():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == 0.0


def test_retry_after_prefers_milliseconds():
    headers = {"retry-after": "9", "x-ms-retry-after-ms": "3000", "retry-after-ms": "100"}
    assert retry_after_seconds(headers) == 0.1


def test_retry_after_azure_ms_before_seconds():
    assert retry_after_seconds({"retry-after": "9", "x-ms-retry-after-ms": "3000"}) == 3.0


def test_retry_after_skips_malformed_value():
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0


def test_retry_after_rejects_negative_value():
    assert retry_after_seconds({"retry-after": "-5"}) is None


def test_retry_after_absent():
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (429, ThrottledError),
        (503, ThrottledError),
        (500, TransientError),
        (502, TransientError),
        (504, TransientError),
        (408, TransientError),
        (409, TransientError),
        (400, InvalidRequestError),
        (422, InvalidRequestError),
        (413, PayloadTooLargeError),
        (401, PermanentError),
        (403, PermanentError),
        (404, PermanentError),
    ],
)
def test_error_for_status_type(status, expected):
    assert type(error_for_status(status, "boom", service="svc")) is expected


def test_error_for_status_keeps_service_message():
    error = error_for_status(400, "input is too long", service="OpenAI embeddings")
    assert "input is too long" in str(error)


def test_error_for_status_carries_retry_after():
    error = error_for_status(429, "slow down", service="svc", retry_after=4.0)
    assert error.retry_after == 4.0


async def test_policy_retries_transient_until_success():
    sleep = RecordingSleep()
    operation = FailingOperation(TransientError("a"), TransientError("b"))
    result = await RetryPolicy(max_retries=3, sleep=sleep, jitter=0).run(operation, description="test")
    assert result == "ok"
    assert operation.calls == 3


async def test_policy_backoff_doubles_without_jitter():
    sleep = RecordingSleep()
    operation = FailingOperation(*(TransientError("x") for _ in range(4)))
    policy = RetryPolicy(max_retries=4, initial_delay=0.5, sleep=sleep, jitter=0)
    await policy.run(operation, description="test")
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0]


async def test_policy_jitter_shortens_delay():
    sleep = RecordingSleep()
    policy = RetryPolicy(max_retries=1, initial_delay=2.0, jitter=0.5, random=lambda: 1.0, sleep=sleep)
    await policy.run(FailingOperation(TransientError("x")), description="test")
    assert sleep.delays == [1.0]


async def test_policy_backoff_capped():
    sleep = RecordingSleep()
    operation = FailingOperation(*(TransientError("x") for _ in range(3)))
    policy = RetryPolicy(max_retries=3, initial_delay=10, max_delay=15, sleep=sleep, jitter=0)
    await policy.run(operation, description="test")
    assert sleep.delays == [10, 15, 15]


async def test_policy_uses_server_delay():
    sleep = RecordingSleep()
    operation = FailingOperation(ThrottledError("429", retry_after=2.5))
    await RetryPolicy(max_retries=1, sleep=sleep).run(operation, description="test")
    assert sleep.delays == [2.5]


async def test_policy_caps_server_delay():
    sleep = RecordingSleep()
    operation = FailingOperation(ThrottledError("429", retry_after=3600))
    await RetryPolicy(max_retries=1, max_delay=60, sleep=sleep).run(operation, description="test")
    assert sleep.delays == [60]


async def test_policy_gives_up_after_max_retries():
    sleep = RecordingSleep()
    operation = FailingOperation(*(TransientError(str(n)) for n in range(10)))
    with pytest.raises(TransientError, match="^3$"):
        await RetryPolicy(max_retries=3, sleep=sleep).run(operation, description="test")
    assert operation.calls == 4


@pytest.mark.parametrize(
    "error",
    [InvalidRequestError("bad"), PermanentError("bad"), ValueError("bad")],
)
async def test_policy_raises_permanent_at_once(error):
    sleep = RecordingSleep()
    operation = FailingOperation(error)
    with pytest.raises(type(error)):
        await RetryPolicy(max_retries=5, sleep=sleep).run(operation, description="test")
    assert operation.calls == 1


@pytest.mark.parametrize("error", [TimeoutError("slow"), ConnectionResetError("reset")])
async def test_policy_retries_builtin_network_errors(error):
    operation = FailingOperation(error)
    await RetryPolicy(max_retries=1, sleep=RecordingSleep()).run(operation, description="test")
    assert operation.calls == 2


async def test_policy_logs_each_retry(caplog):
    operation = FailingOperation(ThrottledError("slow down", retry_after=1.0), TransientError("flaky"))
    with caplog.at_level("WARNING", logger="kernel_memory.ai.retry"):
        await RetryPolicy(max_retries=2, sleep=RecordingSleep()).run(operation, description="embed 3 texts")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "attempt 1 of 3" in messages[0]
    assert "1.00 s" in messages[0]
    assert "slow down" in messages[0]
