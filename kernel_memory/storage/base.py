"""Document storage port: uploaded files, artifacts and the pipeline status, under `{index}/{documentId}/`.

Before any I/O, every method raises `InvalidRequestError` for an index or
document id with characters outside Kernel Memory's set (letters, digits, '.',
'_', '-') and for a file name reserved for the pipeline status. File names are
reduced to their last path component (see `paths.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class DocumentStorage(Protocol):
    async def write_file(self, index: str, document_id: str, file_name: str, data: bytes) -> None:
        """Create or replace one file."""
        ...

    async def write_stream(
        self, index: str, document_id: str, file_name: str, chunks: AsyncIterator[bytes]
    ) -> int:
        """Create or replace one file from a stream of chunks and return the bytes written.

        Readers never see a partial file. When `chunks` raises, the previous version stays.
        """
        ...

    async def read_file(self, index: str, document_id: str, file_name: str) -> bytes:
        """Return a file's bytes; raise `NotFoundError` when it does not exist."""
        ...

    def stream_file(self, index: str, document_id: str, file_name: str) -> AsyncIterator[bytes]:
        """Yield a file's bytes in blocks, for downloads of large files.

        `NotFoundError` comes at the latest with the first block.
        """
        ...

    async def list_files(self, index: str, document_id: str) -> list[str]:
        """Return the document's file names, sorted, without the pipeline status; empty when none."""
        ...

    async def delete_file(self, index: str, document_id: str, file_name: str) -> None:
        """Remove one file; no error when it does not exist."""
        ...

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

    async def close(self) -> None:
        """Close network clients and credentials; the storage is unusable afterwards."""
        ...
