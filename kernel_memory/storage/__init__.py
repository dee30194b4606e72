"""Document storage: the port and its local-folder and Azure Blob adapters.

The adapters are imported from their modules (`storage.local`, `storage.azure_blob`)
so the Azure SDK is loaded only when Blob Storage is configured.
"""

from kernel_memory.storage.base import DocumentStorage
from kernel_memory.storage.factory import build_document_storage
from kernel_memory.storage.paths import sanitize_file_name, validate_document_id, validate_index

__all__ = [
    "DocumentStorage",
    "build_document_storage",
    "sanitize_file_name",
    "validate_document_id",
    "validate_index",
]
