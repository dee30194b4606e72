"""Choice of the document storage adapter from the settings."""

from __future__ import annotations

from kernel_memory.settings import Settings
from kernel_memory.storage.base import DocumentStorage


def build_document_storage(settings: Settings) -> DocumentStorage:
    """Return the adapter named by `settings.storage.type`; no connection is opened yet.

    `local` keeps files under `settings.storage.directory`, resolved against the data folder.
    `azure_blob` uses the container `settings.storage.container`.
    """
    storage = settings.storage
    if storage.type == "azure_blob":
        from kernel_memory.storage.azure_blob import BlobDocumentStorage

        return BlobDocumentStorage(storage)

    from kernel_memory.storage.local import LocalDocumentStorage

    return LocalDocumentStorage(settings.resolve(storage.directory))
