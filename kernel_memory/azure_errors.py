"""Translation of Azure SDK errors into this package's errors, at the adapter boundary.

The pipeline decides between retry and `failed` from the error type alone, so
each Azure failure maps to the type whose `transient` flag tells whether retrying can help.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kernel_memory.errors import (
    ConcurrencyError,
    KernelMemoryError,
    NotFoundError,
    PermanentError,
    TransientError,
)

# 408 request timeout, 429 throttled and 5xx server errors may succeed later.
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def translate_azure_error(error: Exception, *, action: str) -> KernelMemoryError:
    """Return the package error for an Azure SDK `error` raised while doing `action`.

    `action` names the operation and its ids, for example "read blob km/a/b.txt".
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(error, ResourceNotFoundError):
        return NotFoundError(f"{action} failed: not found ({_reason(error)})")

    if isinstance(error, ResourceModifiedError):
        return ConcurrencyError(
            f"{action} failed: it was changed by someone else ({_reason(error)}); read it again"
        )

    # Also raised by azure-identity when no credential in the chain is available.
    if isinstance(error, ClientAuthenticationError):
        return PermanentError(
            f"{action} failed: authentication or authorization was rejected ({_reason(error)});"
            " check the connection string, or that the identity has the Storage Blob Data Contributor"
            " and Storage Queue Data Contributor roles on the account"
        )

    if isinstance(error, (ServiceRequestError, ServiceResponseError)):
        return TransientError(f"{action} failed: the storage service could not be reached ({error})")

    if isinstance(error, HttpResponseError):
        status = error.status_code or 0
        if status == 412 or status == 409:
            return ConcurrencyError(f"{action} failed: HTTP {status} ({_reason(error)}); try again")
        if status in _TRANSIENT_STATUS:
            return TransientError(
                f"{action} failed: HTTP {status} ({_reason(error)})", retry_after=_retry_after(error)
            )
        return PermanentError(f"{action} failed: HTTP {status} ({_reason(error)})")

    return TransientError(f"{action} failed: {type(error).__name__}: {error}")


@contextmanager
def azure_errors(action: str) -> Iterator[None]:
    """Raise the translated error for any Azure SDK error inside the block, chained to the original."""
    from azure.core.exceptions import AzureError

    try:
        yield
    except AzureError as error:
        raise translate_azure_error(error, action=action) from error


def _reason(error: Exception) -> str:
    # Storage errors carry a short code such as "BlobNotFound" or "ConditionNotMet", which reads
    # better in a message than the full text with its request id and timestamps.
    code = getattr(error, "error_code", None)
    if code:
        # The SDK's codes are str enums; `value` is the service's own spelling.
        return str(getattr(code, "value", code))
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
