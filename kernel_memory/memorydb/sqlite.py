"""Embedded memory DB: one SQLite file with vector, keyword (FTS5) and hybrid search.

Vector search is exact: numpy computes the cosine similarity of the query with
every vector of the index that passes the filters, from a float32 matrix kept in
memory per index. The matrix follows this process's writes in place. Each
index also stores a generation number that every write raises, so a search
detects when another process wrote and only then reloads the matrix.

Relevance, always 0..1:
- vector search: cosine similarity (negative values reported as 0), as in
  Kernel Memory, so `minRelevance` 0.7 means what users expect;
- keyword search (no query vector): the bm25 score as a fraction of the best
  match's, so the best keyword match has 1.0;
- hybrid search (query vector and text): the record's cosine similarity, while
  the order comes from fusing both rankings (see `fusion`). Records found only
  by keywords get their cosine similarity from their stored vector, so a
  `minRelevance` drops a keyword match that is not similar enough too.

Every key, value, id and text enters SQL as a bound parameter, and search text reaches FTS5 only
as quoted strings (see `text_search`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from kernel_memory.errors import InvalidRequestError, NotFoundError, PermanentError, TransientError
from kernel_memory.memorydb.filters import (
    MATCHING_ROW_IDS_SQL,
    FilterPairs,
    TagRowIdCache,
    delete_filters,
    filters_parameter,
    normalize_filters,
)
from kernel_memory.memorydb.fusion import (
    DEFAULT_FUSION,
    DEFAULT_RRF_K,
    FUSION_METHODS,
    FusionMethod,
    fuse_rankings,
)
from kernel_memory.memorydb.names import normalize_index_name
from kernel_memory.memorydb.sqlite_records import (
    RECORD_COLUMNS,
    bump_generation,
    check_vector_sizes,
    decode_record,
    delete_rows,
    encode_record,
    fetch_records,
    index_generation,
    next_write_number,
    write_record,
)
from kernel_memory.memorydb.sqlite_schema import ensure_schema
from kernel_memory.memorydb.text_search import (
    keyword_relevance,
    match_expression,
    query_terms,
    quote_term,
)
from kernel_memory.memorydb.vectors import FloatArray, VectorMatrix, top_k
from kernel_memory.models import MemoryFilter, MemoryRecord, ScoredRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Records removed per write transaction by deletes of many records, so another writer
# (a second process on the same file) waits for one page at a time, not the whole delete.
DELETE_PAGE_SIZE = 500

# FTS5's bm25 replaces the IDF of a term in at least half of all rows, log((N - n + 0.5) / (n + 0.5))
# <= 0, with 1e-6 (ext/fts5/fts5_aux.c in SQLite), so such a term moves a score by about 2e-6 at
# most. Scoring its matches still dominates the time of a query on a large index, so keyword
# search leaves such terms out once there are this many rows.
_COMMON_TERM_MIN_ROWS = 2000


class SqliteMemoryDb:
    """Memory DB in one SQLite file; safe for concurrent tasks of one process and for several processes.

    Args:
        path: the database file; missing parent folders are created.
        vector_weight: 0..1 weight of the vector ranking against the keyword ranking in hybrid search.
        fusion: how hybrid search merges the rankings, "rrf" (default) or "linear",
            described in kernel_memory.memorydb.fusion.
        rrf_k: the k of reciprocal rank fusion.
        hybrid_candidates: records taken from each ranking before fusion (at least the limit).
        busy_timeout_seconds: how long a write waits for another process's write to finish.
    """

    def __init__(
        self,
        path: Path,
        *,
        vector_weight: float = 0.5,
        fusion: FusionMethod = DEFAULT_FUSION,
        rrf_k: float = DEFAULT_RRF_K,
        hybrid_candidates: int = 50,
        busy_timeout_seconds: float = 30.0,
    ) -> None:
        if not 0.0 <= vector_weight <= 1.0:
            raise ValueError(f"vector_weight {vector_weight} is invalid: use a value from 0 to 1")
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion {fusion!r} is invalid: use one of {FUSION_METHODS}")
        if rrf_k <= 0:
            raise ValueError(f"rrf_k {rrf_k} is invalid: use a positive number")
        if hybrid_candidates < 1:
            raise ValueError(f"hybrid_candidates {hybrid_candidates} is invalid: use 1 or more")

        self.path = Path(path)
        self.vector_weight = vector_weight
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.hybrid_candidates = hybrid_candidates
        self._busy_timeout_ms = int(busy_timeout_seconds * 1000)

        # One connection per thread: asyncio.to_thread runs calls on several pool threads.
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Writes of this process take turns here rather than spinning on SQLite's busy timeout.
        self._write_lock = threading.Lock()
        # Guards the vector matrices, which writes change in place.
        self._matrix_lock = threading.Lock()
        self._matrices: dict[str, VectorMatrix] = {}
        self._tag_row_ids = TagRowIdCache()
        # Term -> (write counter, whether the term is common), see _informative_terms.
        self._common_terms: dict[str, tuple[int, bool]] = {}

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._translated(self._open)

    # ------------------------------------------------------------------ port

    async def create_index(self, index: str, vector_size: int) -> None:
        await self._run(self._create_index, normalize_index_name(index), vector_size)

    async def list_indexes(self) -> list[str]:
        return await self._run(self._list_indexes)

    async def delete_index(self, index: str) -> None:
        await self._run(self._delete_index, normalize_index_name(index))

    async def upsert(self, index: str, records: Sequence[MemoryRecord]) -> None:
        await self._run(self._upsert, normalize_index_name(index), list(records))

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
        """Return the best records; a limit of 0 or less means no limit.

        Vector and keyword search order by relevance. Hybrid search orders by the
        fused score, so a record may report a higher relevance (its cosine
        similarity) than the one before it.
        """
        return await self._run(
            self._search,
            normalize_index_name(index),
            query_text or "",
            query_vector,
            normalize_filters(filters),
            min_relevance,
            limit,
        )

    async def get_list(
        self, index: str, *, filters: Sequence[MemoryFilter] | None = None, limit: int = 100
    ) -> list[MemoryRecord]:
        """Return records matching the filters in insertion order; a limit of 0 or less means no limit."""
        return await self._run(self._get_list, normalize_index_name(index), normalize_filters(filters), limit)

    async def count(self, index: str, *, filters: Sequence[MemoryFilter] | None = None) -> int:
        return await self._run(self._count, normalize_index_name(index), normalize_filters(filters))

    async def delete(self, index: str, record_ids: Sequence[str]) -> None:
        await self._run(self._delete, normalize_index_name(index), list(record_ids))

    async def delete_by_filter(self, index: str, memory_filter: MemoryFilter) -> int:
        """Delete every record matching the filter, in pages; return how many were deleted.

        Raises InvalidRequestError for a filter without conditions, which would delete the whole index.
        """
        filters = delete_filters(memory_filter)
        return await self._run(self._delete_by_filter, normalize_index_name(index), filters)

    def close(self) -> None:
        """Close the connections of every thread; call when no operation is running."""
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    # ------------------------------------------------------------------ plumbing

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._translated, function, *args)

    def _translated(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function`, turning SQLite's errors into this package's transient or permanent errors."""
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            message = str(error)
            if "locked" in message or "busy" in message:
                raise TransientError(
                    f"memory DB {self.path} is locked by another writer ({message}): retry later"
                ) from error
            raise PermanentError(f"memory DB {self.path} failed: {message}") from error
        except sqlite3.DatabaseError as error:
            raise PermanentError(
                f"memory DB {self.path} failed: {error}; check that the file is a memory DB and not damaged"
            ) from error

    def _open(self) -> None:
        connection = self._connection()
        # WAL lets searches read while another connection or process writes.
        connection.execute("PRAGMA journal_mode = WAL")
        ensure_schema(connection, path=str(self.path))

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so that close() can close it from another thread;
            # each connection is used by its own thread.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            # In WAL mode NORMAL cannot corrupt the file, but a power loss may undo the last commits
            # (SQLite's documentation of PRAGMA synchronous).
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Run the reads inside on one snapshot of the database."""
        connection = self._connection()
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            # An error inside may already have ended the transaction.
            if connection.in_transaction:
                connection.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """Run the statements inside as one write transaction; call with the write lock held."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # ------------------------------------------------------------------ indexes

    def _create_index(self, index: str, vector_size: int) -> None:
        # A size of 0 leaves the size open, and the first record with a vector sets it.
        # Pipelines that store records without embeddings create such indexes.
        if not isinstance(vector_size, int) or vector_size < 0:
            raise InvalidRequestError(
                f"vector size {vector_size!r} of index {index!r} is invalid: use a positive integer"
            )
        with self._write_lock, self._write() as connection:
            row = connection.execute("SELECT vector_size FROM indexes WHERE name = ?", (index,)).fetchone()
            if row is not None:
                if row[0] == 0 and vector_size > 0:
                    connection.execute("UPDATE indexes SET vector_size = ? WHERE name = ?", (vector_size, index))
                elif vector_size > 0 and row[0] != vector_size:
                    raise InvalidRequestError(
                        f"index {index!r} exists with vector size {row[0]}, not {vector_size}: "
                        "delete the index or use another one for a model with a different vector size"
                    )
                return
            connection.execute(
                "INSERT INTO indexes (name, vector_size, generation) VALUES (?, ?, ?)",
                (index, vector_size, next_write_number(connection)),
            )
        logger.info("created index %s with vector size %d in memory DB %s", index, vector_size, self.path)

    def _list_indexes(self) -> list[str]:
        with self._read() as connection:
            return [name for (name,) in connection.execute("SELECT name FROM indexes ORDER BY name")]

    def _delete_index(self, index: str) -> None:
        sql = "SELECT row_id, text FROM records WHERE index_name = :index_name LIMIT :page"
        parameters = {"index_name": index, "page": DELETE_PAGE_SIZE}
        deleted = 0
        while True:
            while page := self._delete_selected(index, sql, parameters):
                deleted += page
            with self._write_lock, self._write() as connection:
                # Checked in the transaction that drops the index, so a record another
                # process added meanwhile is deleted in the next round, not left behind.
                if connection.execute(
                    "SELECT 1 FROM records WHERE index_name = ? LIMIT 1", (index,)
                ).fetchone():
                    continue
                connection.execute("DELETE FROM indexes WHERE name = ?", (index,))
                break

        with self._matrix_lock:
            self._matrices.pop(index, None)
        self._tag_row_ids.forget(index)
        logger.info("deleted index %s with %d records from memory DB %s", index, deleted, self.path)

    # ------------------------------------------------------------------ writes

    def _upsert(self, index: str, records: list[MemoryRecord]) -> None:
        if not records:
            return
        encoded = [encode_record(record, index=index) for record in records]

        with self._write_lock:
            with self._write() as connection:
                row = connection.execute(
                    "SELECT vector_size, generation FROM indexes WHERE name = ?", (index,)
                ).fetchone()
                if row is None:
                    raise NotFoundError(f"index {index!r} does not exist: create it before adding records")
                vector_size, old_generation = row
                if vector_size == 0:
                    vector_size = next((len(r.vector) for r in encoded if r.vector is not None), 0)
                    if vector_size:
                        connection.execute(
                            "UPDATE indexes SET vector_size = ? WHERE name = ?", (vector_size, index)
                        )
                        # A matrix cached without dimensions cannot take the new vectors.
                        with self._matrix_lock:
                            self._matrices.pop(index, None)
                check_vector_sizes(encoded, index=index, vector_size=vector_size)

                row_ids = [write_record(connection, index, record) for record in encoded]
                new_generation = bump_generation(connection, index)

            with_vectors = [(row_id, r.vector) for row_id, r in zip(row_ids, encoded) if r.vector is not None]
            without_vectors = [row_id for row_id, r in zip(row_ids, encoded) if r.vector is None]

            def apply(matrix: VectorMatrix) -> None:
                if with_vectors:
                    matrix.upsert(
                        [row_id for row_id, _ in with_vectors], np.stack([v for _, v in with_vectors])
                    )
                if without_vectors:
                    matrix.delete(without_vectors)

            self._update_matrix(index, old_generation, new_generation, apply)
        logger.debug("upserted %d records into index %s", len(records), index)

    def _delete(self, index: str, record_ids: list[str]) -> None:
        if not record_ids:
            return
        deleted = self._delete_selected(
            index,
            "SELECT row_id, text FROM records WHERE index_name = :index_name "
            "AND id IN (SELECT value FROM json_each(:ids))",
            {"index_name": index, "ids": json.dumps(record_ids, ensure_ascii=False)},
        )
        logger.debug("deleted %d records from index %s", deleted, index)

    def _delete_by_filter(self, index: str, filters: list[FilterPairs]) -> int:
        sql = f"SELECT row_id, text FROM records WHERE row_id IN ({MATCHING_ROW_IDS_SQL}) LIMIT :page"
        parameters = {"index_name": index, "filters": filters_parameter(filters), "page": DELETE_PAGE_SIZE}
        deleted = 0
        while page := self._delete_selected(index, sql, parameters):
            deleted += page

        logger.info("deleted %d records matching %s from index %s", deleted, filters, index)
        return deleted

    def _delete_selected(self, index: str, select_sql: str, parameters: dict[str, Any]) -> int:
        """Delete the records that `select_sql` returns as (row id, text) in one transaction; return how many."""
        with self._write_lock:
            with self._write() as connection:
                generation = index_generation(connection, index)
                if generation is None:
                    return 0
                rows = connection.execute(select_sql, parameters).fetchall()
                if not rows:
                    return 0
                delete_rows(connection, rows)
                new_generation = bump_generation(connection, index)

            row_ids = [row_id for row_id, _ in rows]
            self._update_matrix(index, generation, new_generation, lambda matrix: matrix.delete(row_ids))
        return len(rows)

    def _update_matrix(
        self,
        index: str,
        old_generation: int,
        new_generation: int,
        apply: Callable[[VectorMatrix], None],
    ) -> None:
        """Apply a committed write to the cached matrix, or drop the matrix when it missed other writes.

        Call with the write lock held, so this process's writes reach the matrix in commit order.
        """
        with self._matrix_lock:
            matrix = self._matrices.get(index)
            if matrix is None or matrix.generation >= new_generation:
                return
            if matrix.generation != old_generation:
                # Another process wrote in between: the next search reloads from the file.
                del self._matrices[index]
                return
            apply(matrix)
            matrix.generation = new_generation

    # ------------------------------------------------------------------ reads

    def _count(self, index: str, filters: list[FilterPairs] | None) -> int:
        with self._read() as connection:
            if filters is None:
                sql = "SELECT COUNT(*) FROM records WHERE index_name = :index_name"
            else:
                sql = f"SELECT COUNT(*) FROM ({MATCHING_ROW_IDS_SQL})"
            return connection.execute(sql, _filter_parameters(index, filters)).fetchone()[0]

    def _get_list(self, index: str, filters: list[FilterPairs] | None, limit: int) -> list[MemoryRecord]:
        condition = "" if filters is None else f"AND row_id IN ({MATCHING_ROW_IDS_SQL})"
        parameters = _filter_parameters(index, filters) | {"limit": limit if limit > 0 else -1}
        with self._read() as connection:
            rows = connection.execute(
                f"SELECT {RECORD_COLUMNS} FROM records WHERE index_name = :index_name {condition} "
                "ORDER BY row_id LIMIT :limit",
                parameters,
            ).fetchall()
        return [decode_record(row) for row in rows]

    def _search(
        self,
        index: str,
        query_text: str,
        query_vector: Sequence[float] | None,
        filters: list[FilterPairs] | None,
        min_relevance: float,
        limit: int,
    ) -> list[ScoredRecord]:
        terms = query_terms(query_text)
        with self._read() as connection:
            row = connection.execute(
                "SELECT vector_size, generation FROM indexes WHERE name = ?", (index,)
            ).fetchone()
            if row is None:
                logger.debug("search in missing index %s returns nothing", index)
                return []
            vector_size, generation = row

            informative = self._informative_terms(connection, terms)
            if query_vector is not None and vector_size == 0:
                # No record of this index has a vector yet, so only keywords can find them.
                query_vector = None
            if query_vector is None:
                # With only common terms a keyword search still returns their matches.
                fts_query = match_expression(informative or terms)
                if fts_query is None:
                    return []
                scored = self._keyword_search(connection, index, fts_query, filters, limit)
            else:
                query = _normalized_query(query_vector, index=index, vector_size=vector_size)
                scored = self._vector_or_hybrid_search(
                    connection,
                    index,
                    query,
                    match_expression(informative),
                    filters,
                    limit,
                    vector_size,
                    generation,
                )

            scored = [(row_id, relevance) for row_id, relevance in scored if relevance >= min_relevance]
            if limit > 0:
                scored = scored[:limit]
            records = fetch_records(connection, [row_id for row_id, _ in scored])

        return [
            ScoredRecord(record=records[row_id], relevance=relevance)
            for row_id, relevance in scored
            if row_id in records
        ]

    def _informative_terms(self, connection: sqlite3.Connection, terms: list[str]) -> list[str]:
        """Return the terms that are in fewer than half of the full-text rows, see _COMMON_TERM_MIN_ROWS."""
        if not terms:
            return terms
        total = connection.execute("SELECT value FROM meta WHERE key = 'fts_rows'").fetchone()[0]
        if total < _COMMON_TERM_MIN_ROWS:
            return terms

        write_number = connection.execute("SELECT value FROM meta WHERE key = 'write_counter'").fetchone()[0]
        half = (total + 1) // 2
        informative = []
        for term in terms:
            cached = self._common_terms.get(term)
            if cached is not None and cached[0] == write_number:
                common = cached[1]
            else:
                # Counting stops at half the rows, so a common term costs one partial scan.
                matches = connection.execute(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM records_fts WHERE records_fts MATCH ? LIMIT ?)",
                    (quote_term(term), half),
                ).fetchone()[0]
                common = matches >= half
                if len(self._common_terms) >= 10_000:
                    self._common_terms.clear()
                self._common_terms[term] = (write_number, common)
            if not common:
                informative.append(term)
        return informative

    def _keyword_search(
        self,
        connection: sqlite3.Connection,
        index: str,
        fts_query: str,
        filters: list[FilterPairs] | None,
        limit: int,
    ) -> list[tuple[int, float]]:
        rows = _keyword_matches(connection, index, fts_query, filters, limit)
        relevances = keyword_relevance([score for _, score in rows])
        return [(row_id, relevance) for (row_id, _), relevance in zip(rows, relevances)]

    def _vector_or_hybrid_search(
        self,
        connection: sqlite3.Connection,
        index: str,
        query: FloatArray,
        fts_query: str | None,
        filters: list[FilterPairs] | None,
        limit: int,
        vector_size: int,
        generation: int,
    ) -> list[tuple[int, float]]:
        allowed = None
        if filters is not None:
            allowed = self._tag_row_ids.matching_row_ids(connection, index, filters, generation=generation)

        with self._matrix_lock:
            matrix = self._matrix(connection, index, vector_size, generation)
            row_ids, cosines = matrix.cosine(query, allowed)

        if fts_query is None:
            best_ids, best_cosines = top_k(row_ids, cosines, limit if limit > 0 else len(row_ids))
            return [(int(row_id), _clamped(cosine)) for row_id, cosine in zip(best_ids, best_cosines)]

        pool = max(self.hybrid_candidates, limit) if limit > 0 else max(len(row_ids), self.hybrid_candidates)
        vector_ids, vector_cosines = top_k(row_ids, cosines, pool)
        keyword_rows = _keyword_matches(connection, index, fts_query, filters, pool)
        keyword_ids = [row_id for row_id, _ in keyword_rows]

        cosine = {int(row_id): float(value) for row_id, value in zip(vector_ids, vector_cosines)}
        missing = [row_id for row_id in keyword_ids if row_id not in cosine]
        if missing:
            with self._matrix_lock:
                found_ids, found_cosines = matrix.cosine(query, np.asarray(missing, dtype=np.int64))
            cosine.update({int(row_id): float(value) for row_id, value in zip(found_ids, found_cosines)})
            # A keyword match without a vector has no similarity to report.
            cosine.update({row_id: 0.0 for row_id in missing if row_id not in cosine})

        relevance = keyword_relevance([score for _, score in keyword_rows])
        order = fuse_rankings(
            [int(row_id) for row_id in vector_ids],
            keyword_ids,
            cosine=cosine,
            keyword_relevance=dict(zip(keyword_ids, relevance)),
            method=self.fusion,
            vector_weight=self.vector_weight,
            rrf_k=self.rrf_k,
        )
        return [(row_id, _clamped(cosine[row_id])) for row_id in order]

    def _matrix(
        self, connection: sqlite3.Connection, index: str, vector_size: int, generation: int
    ) -> VectorMatrix:
        """Return the cached vectors of an index, loading them when another process changed the index.

        Call with the matrix lock held, inside the read transaction that read `generation`.
        """
        matrix = self._matrices.get(index)
        # A matrix newer than this read's snapshot is fine: a concurrent write of this process
        # committed after the snapshot began.
        if matrix is not None and matrix.generation >= generation and matrix.dimensions == vector_size:
            return matrix

        count = connection.execute(
            "SELECT COUNT(*) FROM records WHERE index_name = ? AND vector IS NOT NULL", (index,)
        ).fetchone()[0]
        row_ids = np.empty(count, dtype=np.int64)
        vectors = np.empty((count, vector_size), dtype=np.float32)
        cursor = connection.execute(
            "SELECT row_id, vector FROM records WHERE index_name = ? AND vector IS NOT NULL ORDER BY row_id",
            (index,),
        )
        loaded = 0
        # Chunks keep the memory used beyond the matrix itself small.
        while rows := cursor.fetchmany(4096):
            end = loaded + len(rows)
            row_ids[loaded:end] = [row_id for row_id, _ in rows]
            vectors[loaded:end] = np.frombuffer(b"".join(blob for _, blob in rows), dtype="<f4").reshape(
                len(rows), vector_size
            )
            loaded = end

        matrix = VectorMatrix(vector_size, row_ids, vectors, generation=generation)
        self._matrices[index] = matrix
        logger.debug("loaded %d vectors of index %s from memory DB %s", count, index, self.path)
        return matrix


# ---------------------------------------------------------------------- SQL helpers


def _filter_parameters(index: str, filters: list[FilterPairs] | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {"index_name": index}
    if filters is not None:
        parameters["filters"] = filters_parameter(filters)
    return parameters


def _keyword_matches(
    connection: sqlite3.Connection,
    index: str,
    fts_query: str,
    filters: list[FilterPairs] | None,
    limit: int,
) -> list[tuple[int, float]]:
    """Return (row id, bm25 score) of the best keyword matches; lower scores are better."""
    condition = "" if filters is None else f"AND records.row_id IN ({MATCHING_ROW_IDS_SQL})"
    parameters = _filter_parameters(index, filters) | {
        "query": fts_query,
        "limit": limit if limit > 0 else -1,
    }
    return connection.execute(
        "SELECT records_fts.rowid, bm25(records_fts) AS score "
        "FROM records_fts JOIN records ON records.row_id = records_fts.rowid "
        f"WHERE records_fts MATCH :query AND records.index_name = :index_name {condition} "
        "ORDER BY score, records_fts.rowid LIMIT :limit",
        parameters,
    ).fetchall()


def _normalized_query(query_vector: Sequence[float], *, index: str, vector_size: int) -> FloatArray:
    query = np.asarray(query_vector, dtype=np.float32)
    if query.ndim != 1 or len(query) != vector_size:
        raise InvalidRequestError(
            f"query vector has {query.size} dimensions, but index {index!r} stores {vector_size}: "
            "embed the query with the model the index was built with"
        )
    norm = float(np.linalg.norm(query))
    if not math.isfinite(norm) or norm == 0.0:
        raise InvalidRequestError("query vector is invalid: it must have finite values, not all zero")
    return query / norm


def _clamped(cosine: float) -> float:
    # Rounding can put the cosine of a vector with itself just above 1.
    return min(max(float(cosine), 0.0), 1.0)
