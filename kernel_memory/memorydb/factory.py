"""Build the memory DB that the settings choose."""

from __future__ import annotations

import logging

from kernel_memory.errors import PermanentError
from kernel_memory.memorydb.base import MemoryDb
from kernel_memory.settings import Settings

logger = logging.getLogger(__name__)


def build_memory_db(settings: Settings) -> MemoryDb:
    """Return the memory DB of `settings.memory_db.type`.

    Raises PermanentError for a type whose adapter is not available.
    """
    memory_db_type = settings.memory_db.type
    if memory_db_type == "sqlite":
        # Imported here so that a deployment on Azure AI Search never loads the SQLite adapter.
        from kernel_memory.memorydb.sqlite import SqliteMemoryDb

        path = settings.resolve(settings.memory_db.sqlite_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("memory DB: SQLite file %s", path)
        return SqliteMemoryDb(
            path,
            vector_weight=settings.memory_db.hybrid_vector_weight,
            fusion=settings.memory_db.hybrid_fusion,
        )

    if memory_db_type == "azure_ai_search":
        from kernel_memory.memorydb.azure_search import AzureSearchMemoryDb

        search_settings = settings.memory_db.azure_ai_search
        logger.info(
            "memory DB: Azure AI Search %s, index prefix %r", search_settings.endpoint, search_settings.index_prefix
        )
        return AzureSearchMemoryDb(search_settings)

    raise PermanentError(f"memory DB type {memory_db_type!r} is unknown: use 'sqlite' or 'azure_ai_search'")
