"""Translation of Azure SDK errors: not found, conflicts, retryable and permanent failures."""

from __future__ import annotations

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from kernel_memory.azure_errors import azure_errors, translate_azure_error
from kernel_memory.errors import (
    ConcurrencyError,
    NotFoundError,
    PermanentError,
    TransientError,
)


class _Response:
    """The attributes of an HTTP response that azure-core reads when it builds an error."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.reason = "reason"
        self.headers = headers or {}
        self.request = None

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


def _http_error(status: int, headers: dict[str, str] | None = None) -> HttpResponseError:
    return HttpResponseError(message=f"status {status}", response=_Response(status, headers))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ResourceNotFoundError("BlobNotFound"), NotFoundError),
        (ResourceModifiedError("ConditionNotMet"), ConcurrencyError),
        (ClientAuthenticationError("no credential"), PermanentError),
        (ServiceRequestError("connection refused"), TransientError),
    ],
)
def test_translate_error_types(error: Exception, expected: type) -> None:
    assert type(translate_azure_error(error, action="read blob a")) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (412, ConcurrencyError),
        (409, ConcurrencyError),
        (429, TransientError),
        (500, TransientError),
        (503, TransientError),
        (408, TransientError),
        (400, PermanentError),
        (403, PermanentError),
    ],
)
def test_translate_http_status(status: int, expected: type) -> None:
    assert type(translate_azure_error(_http_error(status), action="write blob a")) is expected


def test_translate_keeps_retry_after() -> None:
    error = translate_azure_error(_http_error(503, {"Retry-After": "7"}), action="send message")
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0


def test_translate_names_action() -> None:
    error = translate_azure_error(ResourceNotFoundError("gone"), action="read blob idx/doc/a.txt")
    assert "read blob idx/doc/a.txt" in str(error)


def test_authentication_error_names_roles() -> None:
    error = translate_azure_error(ClientAuthenticationError("denied"), action="list blobs")
    assert "Storage Blob Data Contributor" in str(error)


def test_azure_errors_chains_original() -> None:
    original = ResourceNotFoundError("gone")
    with pytest.raises(NotFoundError) as caught, azure_errors("read blob a"):
        raise original
    assert caught.value.__cause__ is original


def test_azure_errors_passes_other_errors() -> None:
    with pytest.raises(KeyError), azure_errors("read blob a"):
        raise KeyError("not an Azure error")
