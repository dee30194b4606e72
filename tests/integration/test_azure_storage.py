"""Blob document storage against Azurite: the shared contract, large streams, paging deletes, clients."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from kernel_memory.errors import ConcurrencyError, NotFoundError
from kernel_memory.settings import AzureStorageSettings, Settings, StorageSettings
from kernel_memory.storage import build_document_storage
from kernel_memory.storage.azure_blob import BlobDocumentStorage
from tests.storage_contract import DocumentStorageContract

pytestmark = pytest.mark.azurite


def _settings(connection_string: str, container: str) -> StorageSettings:
    return StorageSettings(
        type="azure_blob",
        container=container,
        azure=AzureStorageSettings(connection_string=SecretStr(connection_string)),
    )


async def _delete_container(connection_string: str, container: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob.aio import BlobServiceClient

    async with BlobServiceClient.from_connection_string(connection_string) as service:
        try:
            await service.delete_container(container)
        except ResourceNotFoundError:
            pass


async def _blob_names(connection_string: str, container: str) -> list[str]:
    from azure.storage.blob.aio import BlobServiceClient

    async with BlobServiceClient.from_connection_string(connection_string) as service:
        container_client = service.get_container_client(container)
        return sorted([name async for name in container_client.list_blob_names()])


@pytest.fixture
def container_name() -> str:
    return f"kmtest-{uuid.uuid4().hex[:16]}"


@pytest.fixture
async def storage(azurite_connection_string: str, container_name: str) -> AsyncIterator[BlobDocumentStorage]:
    async with BlobDocumentStorage(_settings(azurite_connection_string, container_name)) as adapter:
        yield adapter
    await _delete_container(azurite_connection_string, container_name)


class TestBlobStorageContract(DocumentStorageContract):
    pass


async def _random_chunks(data: bytes, chunk_size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


async def test_blob_5_mb_stream_sha256(azurite_connection_string: str, container_name: str) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    # 1 MiB blocks, so the upload stages several blocks in parallel and the download comes in several chunks.
    adapter = BlobDocumentStorage(
        _settings(azurite_connection_string, container_name), block_size=1024 * 1024
    )
    try:
        size = await adapter.write_stream("idx", "doc", "random.bin", _random_chunks(data, 100_000))
        blocks = [block async for block in adapter.stream_file("idx", "doc", "random.bin")]
    finally:
        await adapter.close()
        await _delete_container(azurite_connection_string, container_name)

    assert size == len(data)
    assert len(blocks) > 1
    assert hashlib.sha256(b"".join(blocks)).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_blob_layout_and_content_type(
    storage: BlobDocumentStorage, azurite_connection_string: str, container_name: str
) -> None:
    from azure.storage.blob.aio import BlobServiceClient

    await storage.write_file("idx", "doc", "report.pdf", b"%PDF-1.7")
    await storage.write_status("idx", "doc", b"{}", etag=None)

    assert await _blob_names(azurite_connection_string, container_name) == [
        "idx/doc/__pipeline_status.json",
        "idx/doc/report.pdf",
    ]
    async with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        properties = await service.get_blob_client(container_name, "idx/doc/report.pdf").get_blob_properties()
    assert properties.content_settings.content_type == "application/pdf"


async def test_blob_container_created_on_first_use(
    storage: BlobDocumentStorage, azurite_connection_string: str, container_name: str
) -> None:
    assert await storage.list_files("idx", "doc") == []
    assert await _blob_names(azurite_connection_string, container_name) == []


async def test_blob_delete_document_pages(azurite_connection_string: str, container_name: str) -> None:
    adapter = BlobDocumentStorage(_settings(azurite_connection_string, container_name), list_page_size=7)
    try:
        for number in range(100):
            await adapter.write_file("idx", "doc", f"part-{number:03}.txt", b"x")
        await adapter.write_status("idx", "doc", b"{}", etag=None)
        await adapter.write_file("idx", "doc-other", "kept.txt", b"x")

        await adapter.delete_document("idx", "doc")
        remaining = await _blob_names(azurite_connection_string, container_name)
    finally:
        await adapter.close()
        await _delete_container(azurite_connection_string, container_name)

    assert remaining == ["idx/doc-other/kept.txt"]


async def test_blob_etag_is_service_etag(storage: BlobDocumentStorage) -> None:
    etag = await storage.write_status("idx", "doc", b'{"n": 1}', etag=None)
    _, read_etag = await storage.read_status("idx", "doc")
    assert etag == read_etag
    assert etag.startswith('"0x')


async def test_blob_two_clients_one_cas_winner(azurite_connection_string: str, container_name: str) -> None:
    settings = _settings(azurite_connection_string, container_name)
    async with BlobDocumentStorage(settings) as first, BlobDocumentStorage(settings) as second:
        etag = await first.write_status("idx", "doc", b'{"n": 0}', etag=None)
        await second.write_status("idx", "doc", b'{"by": "second"}', etag=etag)
        with pytest.raises(ConcurrencyError):
            await first.write_status("idx", "doc", b'{"by": "first"}', etag=etag)
    await _delete_container(azurite_connection_string, container_name)


async def test_blob_not_found_message_names_document(storage: BlobDocumentStorage) -> None:
    with pytest.raises(NotFoundError, match="idx/doc"):
        await storage.read_status("idx", "doc")


def test_factory_builds_blob_storage(azurite_connection_string: str) -> None:
    settings = Settings(storage=_settings(azurite_connection_string, "kernel-memory"))
    assert isinstance(build_document_storage(settings), BlobDocumentStorage)
