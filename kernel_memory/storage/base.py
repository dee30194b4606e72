"""Document storage port: uploaded files, artifacts and the pipeline status, under `{index}/{documentId}/`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class DocumentStorage(Protocol):
    async def write_file(self, index: str, document_id: str, file_name: str, data: bytes) -> None:
        """Create or replace one file."""
        ...

    async def read_file(self, index: str, document_id: str, file_name: str) -> bytes:
        """Return a file's bytes; raise `NotFoundError` when it does not exist."""
        ...

    def stream_file(self, index: str, document_id: str, file_name: str) -> AsyncIterator[bytes]:
        """Yield a file's bytes in blocks, for downloads of large files."""
        ...

    async def list_files(self, index: str, document_id: str) -> list[str]: ...

    async def delete_file(self, index: str, document_id: str, file_name: str) -> None: ...

    async def delete_document(self, index: str, document_id: str) -> None:
        """Remove every file of a document; no error when there is none."""
        ...

    async def delete_index(self, index: str) -> None: ...

    async def read_status(self, index: str, document_id: str) -> tuple[bytes, str]:
        """Return the pipeline status bytes and their ETag; `NotFoundError` when absent."""
        ...

    async def write_status(self, index: str, document_id: str, data: bytes, *, etag: str | None) -> str:
        """Save the status and return its new ETag.

        `etag=None` creates or overwrites; otherwise the write succeeds only if the
        stored status still has that ETag, else `ConcurrencyError`.
        """
        ...
