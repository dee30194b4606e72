"""Error hierarchy shared by the engine, the pipeline and the HTTP layer.

    KernelMemoryError
    ├── InvalidRequestError        400: the caller sent something malformed
    │   ├── EmptyFileError         400: an uploaded file has zero bytes
    │   └── PayloadTooLargeError   413: over the configured size limit
    ├── AuthenticationError        401: no API key
    ├── AuthorizationError         403: wrong API key
    ├── NotFoundError              404: unknown index, document or file
    ├── ConcurrencyError           409: the stored state changed under us (ETag mismatch)
    ├── UnsupportedContentError    415: a file type no extractor reads
    ├── PermanentError             a failure that retrying cannot fix (corrupt file, bad config)
    └── TransientError             a failure worth retrying (429, 5xx, time-outs)
        └── ThrottledError         429/503 from a model service, with its retry delay

Adapters translate SDK and driver errors into these at the boundary, so the
pipeline decides between retry and `failed` from the type alone.
"""

from __future__ import annotations


class KernelMemoryError(Exception):
    """Base of every error this package raises on purpose."""

    status_code: int = 500
    title: str = "Internal error"
    # Whether running the same operation again may succeed.
    transient: bool = False


class InvalidRequestError(KernelMemoryError):
    status_code = 400
    title = "Invalid request"


class EmptyFileError(InvalidRequestError):
    title = "File is empty"


class PayloadTooLargeError(InvalidRequestError):
    status_code = 413
    title = "Payload too large"


class AuthenticationError(KernelMemoryError):
    status_code = 401
    title = "Missing API key"


class AuthorizationError(KernelMemoryError):
    status_code = 403
    title = "Invalid API key"


class NotFoundError(KernelMemoryError):
    status_code = 404
    title = "Not found"


class ConcurrencyError(KernelMemoryError):
    status_code = 409
    title = "Conflict"
    transient = True


class UnsupportedContentError(KernelMemoryError):
    status_code = 415
    title = "Unsupported file type"


class PermanentError(KernelMemoryError):
    status_code = 422
    title = "Processing failed"


class TransientError(KernelMemoryError):
    status_code = 503
    title = "Service unavailable"
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        # Seconds the remote service requested us to wait, when its response gave a delay.
        self.retry_after = retry_after


class ThrottledError(TransientError):
    status_code = 429
    title = "Too many requests"


def is_transient(error: BaseException) -> bool:
    """Tell whether `error` is worth retrying; unknown errors count as transient.

    An unexpected exception (a network reset surfacing as `OSError`, say) is
    retried by the queue until its delivery count runs out, which is safer
    than failing a document on the first hiccup.
    """
    if isinstance(error, KernelMemoryError):
        return error.transient
    return not isinstance(error, (ValueError, TypeError, KeyError, UnicodeError))
