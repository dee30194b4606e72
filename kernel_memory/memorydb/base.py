"""Memory DB port: records with vectors, tags and payload; vector, keyword and hybrid search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kernel_memory.models import MemoryFilter, MemoryRecord, ScoredRecord


class MemoryDb(Protocol):
    async def create_index(self, index: str, vector_size: int) -> None:
        """Create the index when missing; no error when it exists.

        A `vector_size` of 0 means records without vectors: it matches an
        existing index of any size, and an adapter that must fix the size up front
        raises InvalidRequestError for a new index.
        """
        ...

    async def list_indexes(self) -> list[str]: ...

    async def delete_index(self, index: str) -> None: ...

    async def upsert(self, index: str, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records by id."""
        ...

    async def search(
        self,
        index: str,
        *,
        query_text: str,
        query_vector: Sequence[float] | None,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float = 0.0,
        limit: int = 10,
    ) -> list[ScoredRecord]:
        """Return the best records, most relevant first.

        With a vector and text the search is hybrid; with only text it is keyword search.
        Filters: every tag of one filter must match, any filter may match.
        """
        ...

    async def get_list(
        self, index: str, *, filters: Sequence[MemoryFilter] | None = None, limit: int = 100
    ) -> list[MemoryRecord]: ...

    async def count(self, index: str, *, filters: Sequence[MemoryFilter] | None = None) -> int: ...

    async def delete(self, index: str, record_ids: Sequence[str]) -> None: ...

    async def delete_by_filter(self, index: str, memory_filter: MemoryFilter) -> int:
        """Delete every record matching the filter, however many; return how many went."""
        ...
