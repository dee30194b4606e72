"""Embedding cache keyed by (model id, kind, sha256 of the text), stored in SQLite.

Re-importing unchanged content then costs no model calls: `CachedEmbeddingGenerator`
looks every text up first and sends only the misses, each distinct text once.
Vectors are stored as little-endian float32, and the generator returns the stored
(float32-rounded) values for misses too, so a vector is the same whether it came
from the model or from the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kernel_memory.ai.base import EmbeddingGenerator

logger = logging.getLogger(__name__)

# Queries and passages are cached apart because some models embed them differently.
EmbeddingKind = Literal["document", "query"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    dimensions INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (model_id, kind, text_sha256)
) WITHOUT ROWID
"""

# SQLite builds before 3.32 allow at most 999 bound parameters per statement.
# Two of them go to the model id and kind, so texts are looked up in chunks of 500.
_LOOKUP_CHUNK = 500


def text_digest(text: str) -> bytes:
    """Return the SHA-256 of the UTF-8 text, the cache key next to the model id."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def _to_blob(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _from_blob(blob: bytes) -> list[float]:
    return np.frombuffer(blob, dtype="<f4").tolist()


class EmbeddingCache:
    """A SQLite file of vectors; safe to share between threads of one process.

    One connection serves every thread behind a lock, and WAL mode lets other
    processes read the file while one writes.
    """

    # NOTE: entries are never evicted; delete the file to reclaim space after a model change.

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(path, check_same_thread=False, timeout=30.0)
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(_SCHEMA)
            self._connection.commit()

    def get_many(
        self, model_id: str, kind: EmbeddingKind, digests: Iterable[bytes]
    ) -> dict[bytes, list[float]]:
        """Return the stored vectors of the digests found, keyed by digest."""
        unique_digests = list(dict.fromkeys(digests))
        found: dict[bytes, list[float]] = {}
        with self._lock:
            for start in range(0, len(unique_digests), _LOOKUP_CHUNK):
                chunk = unique_digests[start : start + _LOOKUP_CHUNK]
                placeholders = ",".join("?" * len(chunk))
                rows = self._connection.execute(
                    "SELECT text_sha256, vector FROM embeddings "
                    f"WHERE model_id = ? AND kind = ? AND text_sha256 IN ({placeholders})",
                    (model_id, kind, *chunk),
                )
                for digest, blob in rows:
                    found[bytes(digest)] = _from_blob(blob)
        return found

    def put_many(self, model_id: str, kind: EmbeddingKind, vectors: Mapping[bytes, Sequence[float]]) -> None:
        """Store vectors keyed by text digest, replacing any stored for the same key."""
        now = time.time()
        rows = [
            (model_id, kind, digest, len(vector), _to_blob(vector), now) for digest, vector in vectors.items()
        ]
        with self._lock, self._connection:
            self._connection.executemany(
                "INSERT OR REPLACE INTO embeddings "
                "(model_id, kind, text_sha256, dimensions, vector, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def count(self, model_id: str | None = None) -> int:
        """Count stored vectors, of one model or of all."""
        with self._lock:
            if model_id is None:
                row = self._connection.execute("SELECT COUNT(*) FROM embeddings").fetchone()
            else:
                row = self._connection.execute(
                    "SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


@dataclass
class CacheCounters:
    """Hit, miss and model call counts of a `CachedEmbeddingGenerator` since it was built."""

    # Texts served from the cache, counting repeats within one call.
    hits: int = 0
    # Distinct texts not found in the cache, each embedded once.
    misses: int = 0
    # Calls made to the wrapped generator (one per call with misses, not per HTTP request).
    model_calls: int = 0


class CachedEmbeddingGenerator:
    """Implements the `EmbeddingGenerator` port by consulting a cache before `inner`."""

    def __init__(self, inner: EmbeddingGenerator, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.model_id = inner.model_id
        self.max_input_tokens = inner.max_input_tokens
        self.dimensions = inner.dimensions
        self.counters = CacheCounters()

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages, sending only the distinct texts the cache lacks to the model."""
        if not texts:
            return []
        return await self._embed(list(texts), kind="document")

    async def embed_query(self, text: str) -> list[float]:
        """Embed a search query, from the cache when the same query was embedded before."""
        vectors = await self._embed([text], kind="query")
        return vectors[0]

    async def aclose(self) -> None:
        """Close the wrapped generator (when it has `aclose`) and the cache file."""
        close_inner = getattr(self.inner, "aclose", None)
        if close_inner is not None:
            await close_inner()
        self.cache.close()

    async def _embed(self, texts: list[str], *, kind: EmbeddingKind) -> list[list[float]]:
        digests = [text_digest(text) for text in texts]
        # SQLite calls block, so they run on a worker thread to keep the event loop free.
        found = await asyncio.to_thread(self.cache.get_many, self.model_id, kind, digests)

        missing: dict[bytes, str] = {}
        for digest, text in zip(digests, texts, strict=True):
            if digest not in found and digest not in missing:
                missing[digest] = text
        hits = sum(1 for digest in digests if digest in found)
        self.counters.hits += hits
        self.counters.misses += len(missing)

        if missing:
            self.counters.model_calls += 1
            miss_texts = list(missing.values())
            if kind == "query":
                new_vectors = [await self.inner.embed_query(miss_texts[0])]
            else:
                new_vectors = await self.inner.embed_documents(miss_texts)
            stored = {
                digest: np.asarray(vector, dtype="<f4").tolist()
                for digest, vector in zip(missing, new_vectors, strict=True)
            }
            await asyncio.to_thread(self.cache.put_many, self.model_id, kind, stored)
            found.update(stored)

        logger.debug(
            "embedding cache for %s: %d of %d texts found, %d distinct texts embedded",
            self.model_id,
            hits,
            len(texts),
            len(missing),
        )
        return [found[digest] for digest in digests]
