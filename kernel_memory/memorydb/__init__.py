"""Memory DB port and adapters: records with vectors, tags and payload; vector, keyword and hybrid search."""

from __future__ import annotations

from kernel_memory.memorydb.base import MemoryDb
from kernel_memory.memorydb.factory import build_memory_db
from kernel_memory.memorydb.names import DEFAULT_INDEX, normalize_index_name

__all__ = ["DEFAULT_INDEX", "MemoryDb", "build_memory_db", "normalize_index_name"]
