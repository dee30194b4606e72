"""Problem details for each kind of error."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from starlette.requests import Request

from kernel_memory.errors import (
    EmptyFileError,
    NotFoundError,
    PayloadTooLargeError,
    PermanentError,
    ThrottledError,
    TransientError,
    UnsupportedContentError,
)
from kernel_memory.http.problems import DEFAULT_RETRY_AFTER_SECONDS, problem_for_error
from kernel_memory.models import MemoryQuery


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/ask", "query_string": b"", "headers": []})


def _body(response) -> dict:
    return json.loads(response.body)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (EmptyFileError("file is empty: a.txt"), 400),
        (NotFoundError("document 'x' not found"), 404),
        (PayloadTooLargeError("too large"), 413),
        (UnsupportedContentError("unsupported file type"), 415),
        (ThrottledError("429 from the model", retry_after=3), 429),
        (TransientError("503 from the model"), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_problem_status_per_error(error, status):
    response = problem_for_error(error, _request())
    assert response.status_code == status
    assert _body(response)["status"] == status
    assert _body(response)["detail"] == str(error)


def test_problem_throttled_has_retry_after():
    response = problem_for_error(ThrottledError("slow down", retry_after=2.1), _request())
    assert response.headers["retry-after"] == "3"


def test_problem_transient_without_delay_gets_default():
    response = problem_for_error(TransientError("unavailable"), _request())
    assert response.headers["retry-after"] == str(DEFAULT_RETRY_AFTER_SECONDS)


def test_problem_validation_error_is_400():
    with pytest.raises(ValidationError) as caught:
        MemoryQuery.model_validate({"question": "q", "minRelevance": "high"})
    response = problem_for_error(caught.value, _request())
    assert response.status_code == 400
    assert "minRelevance" in _body(response)["detail"]


def test_problem_permanent_error_is_500():
    response = problem_for_error(PermanentError("KM_OCR__TYPE is not available"), _request())
    assert response.status_code == 500


def test_problem_unexpected_error_hides_details():
    response = problem_for_error(RuntimeError("secret connection string"), _request())
    assert response.status_code == 500
    assert "secret" not in _body(response)["detail"]


def test_problem_content_type_and_instance():
    response = problem_for_error(NotFoundError("missing"), _request())
    assert response.headers["content-type"] == "application/problem+json"
    assert _body(response)["instance"] == "/ask"
