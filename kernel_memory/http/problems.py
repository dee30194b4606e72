"""RFC 9457 problem details: the body of every error response of the HTTP API.

Errors from kernel_memory/errors.py map to their `status_code`; throttling and
other transient failures also get a `Retry-After` header so clients back off.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from kernel_memory.errors import KernelMemoryError, PermanentError, TransientError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Seconds sent in `Retry-After` when a transient failure carries no delay of its own.
DEFAULT_RETRY_AFTER_SECONDS = 5

# `type` URIs point at the section of the RFC that defines the status, as ASP.NET does.
_STATUS_TYPES = {
    400: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1",
    401: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2",
    403: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.4",
    404: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.5",
    405: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.6",
    409: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.10",
    413: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.14",
    415: "https://www.rfc-editor.org/rfc/rfc9110#section-15.5.16",
    429: "https://www.rfc-editor.org/rfc/rfc6585#section-4",
    500: "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.1",
    503: "https://www.rfc-editor.org/rfc/rfc9110#section-15.6.4",
}


def problem_response(
    status: int,
    *,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Build an `application/problem+json` response."""
    body = {
        "type": _STATUS_TYPES.get(status, "about:blank"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=dict(headers or {}),
    )


def problem_for_error(error: Exception, request: Request) -> Response:
    """Translate an exception raised while serving `request` into problem details.

    Errors of the caller's making keep their 4xx status. A `PermanentError`
    here is a server-side failure (a misconfigured model, say), so it is 500.
    Anything else is unexpected: it is logged with its traceback and answered
    with a 500 that does not echo internal details.
    """
    instance = request.url.path
    if isinstance(error, ValidationError):
        return problem_response(
            400, title="Invalid request", detail=_validation_detail(error), instance=instance
        )

    if isinstance(error, TransientError):
        seconds = error.retry_after if error.retry_after is not None else DEFAULT_RETRY_AFTER_SECONDS
        logger.warning(
            "%s %s: transient failure, retry after %s s: %s", request.method, instance, seconds, error
        )
        return problem_response(
            error.status_code,
            title=error.title,
            detail=str(error),
            instance=instance,
            headers={"Retry-After": str(max(1, math.ceil(seconds)))},
        )

    if isinstance(error, PermanentError):
        logger.error("%s %s failed: %s", request.method, instance, error)
        return problem_response(500, title="Internal error", detail=str(error), instance=instance)

    if isinstance(error, KernelMemoryError):
        return problem_response(error.status_code, title=error.title, detail=str(error), instance=instance)

    logger.exception("%s %s failed with an unexpected error", request.method, instance)
    return problem_response(
        500,
        title="Internal error",
        detail="the server failed to process the request; see the service log",
        instance=instance,
    )


def _validation_detail(error: ValidationError) -> str:
    """Summarise pydantic's errors as `field: message` pairs in the request's JSON names."""
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)
