"""In-memory copy of one index's vectors, for brute-force cosine similarity with numpy.

Rows are the records' vectors divided by their norms, so a matrix-vector
product with a normalised query gives cosine similarity directly. Rows are
kept in ascending row id order (SQLite's AUTOINCREMENT ids only grow), which
lets a filter's matching row ids be turned into row positions with one binary
search. A record whose vector arrives after its row id was taken is merged
in order, which copies the matrix. Deleted rows stay in place, masked, until
they are a quarter of the matrix; then the matrix is compacted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

# Below this share of the rows, a filtered search copies the matching rows out and multiplies
# only those; above it, multiplying the whole matrix and picking the scores is cheaper.
_GATHER_MAX_SHARE = 0.25


def normalize_rows(vectors: FloatArray) -> FloatArray:
    """Divide each row by its norm; rows of zeros stay zeros (their cosine with anything is 0)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


class VectorMatrix:
    """Normalised vectors of one index with their SQLite row ids, grown in place as records arrive."""

    def __init__(self, dimensions: int, rowids: IdArray, vectors: FloatArray, *, generation: int) -> None:
        self.dimensions = dimensions
        # Write counter value of the index when this copy matched the database.
        self.generation = generation
        self._rowids = np.ascontiguousarray(rowids, dtype=np.int64)
        self._vectors = normalize_rows(np.ascontiguousarray(vectors, dtype=np.float32))
        self._live = np.ones(len(self._rowids), dtype=bool)
        self._size = len(self._rowids)
        self._dead = 0

    @property
    def live_count(self) -> int:
        return self._size - self._dead

    def upsert(self, rowids: Sequence[int], vectors: FloatArray) -> None:
        """Replace the rows of known row ids and add the others."""
        rowids = np.asarray(rowids, dtype=np.int64)
        vectors = normalize_rows(np.array(vectors, dtype=np.float32, copy=True))
        positions, found = self._positions(rowids)
        known = positions[found]
        self._dead -= int((~self._live[known]).sum())
        self._vectors[known] = vectors[found]
        self._live[known] = True

        new_rowids = rowids[~found]
        if len(new_rowids) == 0:
            return
        order = np.argsort(new_rowids, kind="stable")
        new_rowids = new_rowids[order]
        new_vectors = vectors[~found][order]
        if self._size == 0 or new_rowids[0] > self._rowids[self._size - 1]:
            self._append(new_rowids, new_vectors)
        else:
            # A record that had no vector before keeps its old, smaller row id: merge in order.
            self._merge(new_rowids, new_vectors)

    def delete(self, rowids: Sequence[int]) -> None:
        """Mask the rows of these row ids; unknown ids are ignored."""
        positions, found = self._positions(np.asarray(rowids, dtype=np.int64))
        positions = positions[found]
        newly_dead = int(self._live[positions].sum())
        self._live[positions] = False
        self._dead += newly_dead
        if self._dead > 1000 and self._dead > self._size // 4:
            self._compact()

    def cosine(self, query: FloatArray, rowids: IdArray | None = None) -> tuple[IdArray, FloatArray]:
        """Return (row ids, cosine similarities) of every live row, or of the live rows among `rowids`.

        `query` must already be normalised.
        """
        if rowids is None:
            scores = self._vectors[: self._size] @ query
            if self._dead:
                live = self._live[: self._size]
                return self._rowids[: self._size][live], scores[live]
            return self._rowids[: self._size], scores

        positions, found = self._positions(np.asarray(rowids, dtype=np.int64))
        positions = positions[found]
        positions = positions[self._live[positions]]
        if len(positions) <= _GATHER_MAX_SHARE * self._size:
            scores = self._vectors[positions] @ query
        else:
            scores = (self._vectors[: self._size] @ query)[positions]
        return self._rowids[positions], scores

    def _positions(self, rowids: IdArray) -> tuple[IdArray, npt.NDArray[np.bool_]]:
        """Return each row id's position and whether it is in the matrix."""
        kept = self._rowids[: self._size]
        positions = np.searchsorted(kept, rowids)
        found = positions < self._size
        found[found] = kept[positions[found]] == rowids[found]
        positions[~found] = 0
        return positions, found

    def _append(self, rowids: IdArray, vectors: FloatArray) -> None:
        needed = self._size + len(rowids)
        if needed > len(self._rowids):
            # Grow by half again at least, so a stream of small upserts copies the matrix rarely.
            capacity = max(needed, len(self._rowids) * 3 // 2, 1024)
            self._rowids = _resized(self._rowids, capacity)
            self._vectors = _resized(self._vectors, capacity)
            self._live = _resized(self._live, capacity)
        self._rowids[self._size : needed] = rowids
        self._vectors[self._size : needed] = vectors
        self._live[self._size : needed] = True
        self._size = needed

    def _merge(self, rowids: IdArray, vectors: FloatArray) -> None:
        self._compact()
        merged_rowids = np.concatenate([self._rowids, rowids])
        order = np.argsort(merged_rowids, kind="stable")
        self._rowids = merged_rowids[order]
        self._vectors = np.concatenate([self._vectors, vectors])[order]
        self._size = len(self._rowids)
        self._live = np.ones(self._size, dtype=bool)

    def _compact(self) -> None:
        live = self._live[: self._size]
        self._rowids = self._rowids[: self._size][live].copy()
        self._vectors = self._vectors[: self._size][live].copy()
        self._size = len(self._rowids)
        self._live = np.ones(self._size, dtype=bool)
        self._dead = 0


def _resized(array: npt.NDArray, capacity: int) -> npt.NDArray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def top_k(rowids: IdArray, scores: FloatArray, k: int) -> tuple[IdArray, FloatArray]:
    """Return the k best (row id, score) pairs, best first; ties go to the smaller row id."""
    if k < len(scores):
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((rowids[candidates], -scores[candidates]))
    chosen = candidates[order]
    return rowids[chosen], scores[chosen]
