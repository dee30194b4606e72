"""Document storage on Azure Blob Storage (or Azurite): blobs named `{index}/{documentId}/{file}`.

The container is created on first use. Uploads and downloads are streamed in
blocks, so a large file never sits in memory whole. Status writes are guarded
by the blob's ETag (`If-Match`), so two pipeline workers cannot both advance
the same document.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Self

from kernel_memory.azure_auth import create_blob_service_client
from kernel_memory.azure_errors import azure_errors
from kernel_memory.errors import ConcurrencyError, NotFoundError
from kernel_memory.models import STATUS_FILE_NAME
from kernel_memory.settings import StorageSettings
from kernel_memory.storage.paths import (
    document_prefix,
    index_prefix,
    is_internal_file,
    sanitize_file_name,
)

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.blob import ContentSettings
    from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

logger = logging.getLogger(__name__)

# Transfer sizes: uploads of unknown length are staged in blocks of this size, and
# downloads arrive in chunks of this size, so memory per transfer stays near
# `max_concurrency` blocks.
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 4
# Blob names per listing page. The service returns at most 5,000.
DEFAULT_LIST_PAGE_SIZE = 5000
# Deletes in flight at once while a document or an index is removed.
_DELETE_CONCURRENCY = 16


class BlobDocumentStorage:
    """`DocumentStorage` on one Blob Storage container."""

    def __init__(
        self,
        settings: StorageSettings,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        list_page_size: int = DEFAULT_LIST_PAGE_SIZE,
    ) -> None:
        self._settings = settings
        self.container_name = settings.container
        self._block_size = block_size
        self._max_concurrency = max_concurrency
        self._list_page_size = list_page_size
        self._service: BlobServiceClient | None = None
        self._credential: AsyncTokenCredential | None = None
        self._container: ContainerClient | None = None
        self._connect_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the service client and its credential."""
        if self._service is not None:
            await self._service.close()
        if self._credential is not None:
            await self._credential.close()
        self._service = self._credential = self._container = None

    # ------------------------------------------------------------ clients

    async def _container_client(self) -> ContainerClient:
        if self._container is not None:
            return self._container

        async with self._connect_lock:
            if self._container is None:
                self._container = await self._connect()
        return self._container

    async def _connect(self) -> ContainerClient:
        from azure.core.exceptions import ResourceExistsError

        service, credential = create_blob_service_client(
            self._settings.azure,
            setting_prefix="KM_STORAGE__AZURE",
            max_block_size=self._block_size,
            max_single_get_size=self._block_size,
            max_chunk_get_size=self._block_size,
        )
        self._service, self._credential = service, credential
        container = service.get_container_client(self.container_name)

        with azure_errors(f"create container {self.container_name}"):
            try:
                await container.create_container()
                logger.info("created blob container %s", self.container_name)
            except ResourceExistsError:
                pass
        return container

    async def _blob(self, name: str) -> BlobClient:
        container = await self._container_client()
        return container.get_blob_client(name)

    # ------------------------------------------------------------ files

    async def write_file(self, index: str, document_id: str, file_name: str, data: bytes) -> None:
        name = _file_blob_name(index, document_id, file_name)
        blob = await self._blob(name)
        with azure_errors(f"write blob {name}"):
            await blob.upload_blob(
                bytes(data),
                overwrite=True,
                content_settings=_content_settings(name),
                max_concurrency=self._max_concurrency,
            )
        logger.debug("wrote blob %s (%d bytes)", name, len(data))

    async def write_stream(
        self, index: str, document_id: str, file_name: str, chunks: AsyncIterator[bytes]
    ) -> int:
        name = _file_blob_name(index, document_id, file_name)
        blob = await self._blob(name)
        counter = _ByteCounter(chunks)
        first = await counter.first_chunk()

        # azure-storage-blob 12.31 fails on an empty stream when max_concurrency > 1
        # ("Set of Tasks/Futures is empty"), so an empty stream becomes an empty blob here.
        if first is None:
            await self.write_file(index, document_id, file_name, b"")
            return 0

        # Blocks are staged as they arrive and committed once at the end, so
        # readers see the previous blob until the whole stream is in.
        with azure_errors(f"write blob {name}"):
            await blob.upload_blob(
                counter.iterate(first),
                overwrite=True,
                content_settings=_content_settings(name),
                max_concurrency=self._max_concurrency,
            )
        logger.debug("wrote blob %s (%d bytes, streamed)", name, counter.size)
        return counter.size

    async def read_file(self, index: str, document_id: str, file_name: str) -> bytes:
        name = _file_blob_name(index, document_id, file_name)
        blob = await self._blob(name)
        with azure_errors(f"read blob {name}"):
            downloader = await blob.download_blob(max_concurrency=self._max_concurrency)
            return await downloader.readall()

    def stream_file(self, index: str, document_id: str, file_name: str) -> AsyncIterator[bytes]:
        # Names are validated now, but whether the blob exists is known only with the first block.
        name = _file_blob_name(index, document_id, file_name)
        return self._download_blocks(name)

    async def _download_blocks(self, name: str) -> AsyncIterator[bytes]:
        blob = await self._blob(name)
        with azure_errors(f"read blob {name}"):
            downloader = await blob.download_blob()
            async for block in downloader.chunks():
                yield block

    async def list_files(self, index: str, document_id: str) -> list[str]:
        prefix = document_prefix(index, document_id)
        container = await self._container_client()
        names: list[str] = []
        with azure_errors(f"list blobs under {prefix}"):
            async for blob_name in container.list_blob_names(name_starts_with=prefix):
                file_name = blob_name[len(prefix) :]
                # Only direct children count, because the adapters never write deeper names.
                if "/" not in file_name and not is_internal_file(file_name):
                    names.append(file_name)
        return sorted(names)

    async def delete_file(self, index: str, document_id: str, file_name: str) -> None:
        name = _file_blob_name(index, document_id, file_name)
        await self._delete_blob(name)

    async def delete_document(self, index: str, document_id: str) -> None:
        prefix = document_prefix(index, document_id)
        count = await self._delete_prefix(prefix)
        logger.info("deleted %d blobs of document %s/%s", count, index, document_id)

    async def delete_index(self, index: str) -> None:
        prefix = index_prefix(index)
        count = await self._delete_prefix(prefix)
        logger.info("deleted %d blobs of index %s", count, index)

    async def _delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose name starts with `prefix`, one listing page at a time."""
        container = await self._container_client()
        limit = asyncio.Semaphore(_DELETE_CONCURRENCY)

        async def delete_one(blob_name: str) -> None:
            async with limit:
                await self._delete_blob(blob_name)

        # The listing continues after the last name of the previous page, so
        # deleting that page's blobs does not shift the next page.
        count = 0
        with azure_errors(f"list blobs under {prefix}"):
            pages = container.list_blob_names(
                name_starts_with=prefix, results_per_page=self._list_page_size
            ).by_page()
            async for page in pages:
                names = [blob_name async for blob_name in page]
                await asyncio.gather(*(delete_one(blob_name) for blob_name in names))
                count += len(names)
        return count

    async def _delete_blob(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = await self._blob(name)
        with azure_errors(f"delete blob {name}"):
            try:
                await blob.delete_blob(delete_snapshots="include")
            except ResourceNotFoundError:
                pass

    # ------------------------------------------------------------ pipeline status

    async def read_status(self, index: str, document_id: str) -> tuple[bytes, str]:
        name = document_prefix(index, document_id) + STATUS_FILE_NAME
        blob = await self._blob(name)
        try:
            with azure_errors(f"read status blob {name}"):
                downloader = await blob.download_blob()
                data = await downloader.readall()
        except NotFoundError:
            raise NotFoundError(
                f"document {index}/{document_id} has no pipeline status: it was never uploaded or was deleted"
            ) from None
        return data, str(downloader.properties.etag)

    async def write_status(self, index: str, document_id: str, data: bytes, *, etag: str | None) -> str:
        from azure.core import MatchConditions

        name = document_prefix(index, document_id) + STATUS_FILE_NAME
        blob = await self._blob(name)
        conditions = {} if etag is None else {"etag": etag, "match_condition": MatchConditions.IfNotModified}

        try:
            with azure_errors(f"write status blob {name}"):
                result = await blob.upload_blob(
                    bytes(data),
                    overwrite=True,
                    content_settings=_content_settings(name),
                    **conditions,
                )
        except (ConcurrencyError, NotFoundError) as error:
            if etag is None:
                raise
            # A deleted status fails `If-Match` too, and the caller reads again either way.
            raise ConcurrencyError(
                f"status of {index}/{document_id} changed or was deleted after it was read"
                f" (expected etag {etag}); read it again"
            ) from error

        new_etag = str(result["etag"])
        logger.debug("saved the status of %s/%s, etag %s", index, document_id, new_etag)
        return new_etag


class _ByteCounter:
    """Pass the non-empty chunks of a stream through while counting their bytes."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = aiter(chunks)
        self.size = 0

    async def first_chunk(self) -> bytes | None:
        """Return the first non-empty chunk, or None when the stream has no bytes."""
        async for chunk in self._chunks:
            if chunk:
                self.size += len(chunk)
                return bytes(chunk)
        return None

    async def iterate(self, first: bytes) -> AsyncIterator[bytes]:
        yield first
        async for chunk in self._chunks:
            if chunk:
                self.size += len(chunk)
                yield bytes(chunk)


def _file_blob_name(index: str, document_id: str, file_name: str) -> str:
    return document_prefix(index, document_id) + sanitize_file_name(file_name)


def _content_settings(name: str) -> ContentSettings:
    from azure.storage.blob import ContentSettings

    content_type, _ = mimetypes.guess_type(name)
    return ContentSettings(content_type=content_type or "application/octet-stream")
