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
# only those. Above it, multiplying the whole matrix and picking the scores is cheaper
# (an estimate from timing both ways at 10% and 100% of 100,000 rows).
_GATHER_MAX_SHARE = 0.25


def normalize_rows(vectors: FloatArray) -> FloatArray:
    """Divide each row by its norm; rows of zeros stay zeros (their cosine with anything is 0)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    np.divide(vectors, norms, out=vectors, where=norms > 0)
    return vectors


class VectorMatrix:
    """Normalised vectors of one index with their SQLite row ids, grown in place as records arrive."""

    def __init__(self, dimensions: int, row_ids: IdArray, vectors: FloatArray, *, generation: int) -> None:
        self.dimensions = dimensions
        # Write counter value of the index when this copy matched the database.
        self.generation = generation
        self._row_ids = np.ascontiguousarray(row_ids, dtype=np.int64)
        self._vectors = normalize_rows(np.ascontiguousarray(vectors, dtype=np.float32))
        self._live = np.ones(len(self._row_ids), dtype=bool)
        self._size = len(self._row_ids)
        self._dead = 0

    @property
    def live_count(self) -> int:
        return self._size - self._dead

    def upsert(self, row_ids: Sequence[int], vectors: FloatArray) -> None:
        """Replace the rows of known row ids and add the others."""
        row_ids = np.asarray(row_ids, dtype=np.int64)
        vectors = normalize_rows(np.array(vectors, dtype=np.float32, copy=True))
        positions, found = self._positions(row_ids)
        known = positions[found]
        self._dead -= int((~self._live[known]).sum())
        self._vectors[known] = vectors[found]
        self._live[known] = True

        new_row_ids = row_ids[~found]
        if len(new_row_ids) == 0:
            return
        order = np.argsort(new_row_ids, kind="stable")
        new_row_ids = new_row_ids[order]
        new_vectors = vectors[~found][order]
        if self._size == 0 or new_row_ids[0] > self._row_ids[self._size - 1]:
            self._append(new_row_ids, new_vectors)
        else:
            # A record that had no vector before keeps its old, smaller row id: merge in order.
            self._merge(new_row_ids, new_vectors)

    def delete(self, row_ids: Sequence[int]) -> None:
        """Mask the rows of these row ids; unknown ids are ignored."""
        positions, found = self._positions(np.asarray(row_ids, dtype=np.int64))
        positions = positions[found]
        newly_dead = int(self._live[positions].sum())
        self._live[positions] = False
        self._dead += newly_dead
        if self._dead > 1000 and self._dead > self._size // 4:
            self._compact()

    def cosine(self, query: FloatArray, row_ids: IdArray | None = None) -> tuple[IdArray, FloatArray]:
        """Return (row ids, cosine similarities) of every live row, or of the live rows among `row_ids`.

        `query` must already be normalised.
        """
        if row_ids is None:
            scores = self._vectors[: self._size] @ query
            if self._dead:
                live = self._live[: self._size]
                return self._row_ids[: self._size][live], scores[live]
            return self._row_ids[: self._size], scores

        positions, found = self._positions(np.asarray(row_ids, dtype=np.int64))
        positions = positions[found]
        positions = positions[self._live[positions]]
        if len(positions) <= _GATHER_MAX_SHARE * self._size:
            scores = self._vectors[positions] @ query
        else:
            scores = (self._vectors[: self._size] @ query)[positions]
        return self._row_ids[positions], scores

    def _positions(self, row_ids: IdArray) -> tuple[IdArray, npt.NDArray[np.bool_]]:
        """Return each row id's position and whether it is in the matrix."""
        stored = self._row_ids[: self._size]
        positions = np.searchsorted(stored, row_ids)
        found = positions < self._size
        found[found] = stored[positions[found]] == row_ids[found]
        positions[~found] = 0
        return positions, found

    def _append(self, row_ids: IdArray, vectors: FloatArray) -> None:
        needed = self._size + len(row_ids)
        if needed > len(self._row_ids):
            # Grow by half again at least, so a stream of small upserts copies the matrix rarely.
            capacity = max(needed, len(self._row_ids) * 3 // 2, 1024)
            self._row_ids = _resized(self._row_ids, capacity)
            self._vectors = _resized(self._vectors, capacity)
            self._live = _resized(self._live, capacity)
        self._row_ids[self._size : needed] = row_ids
        self._vectors[self._size : needed] = vectors
        self._live[self._size : needed] = True
        self._size = needed

    def _merge(self, row_ids: IdArray, vectors: FloatArray) -> None:
        self._compact()
        merged_row_ids = np.concatenate([self._row_ids, row_ids])
        order = np.argsort(merged_row_ids, kind="stable")
        self._row_ids = merged_row_ids[order]
        self._vectors = np.concatenate([self._vectors, vectors])[order]
        self._size = len(self._row_ids)
        self._live = np.ones(self._size, dtype=bool)

    def _compact(self) -> None:
        live = self._live[: self._size]
        self._row_ids = self._row_ids[: self._size][live].copy()
        self._vectors = self._vectors[: self._size][live].copy()
        self._size = len(self._row_ids)
        self._live = np.ones(self._size, dtype=bool)
        self._dead = 0


def _resized(array: npt.NDArray, capacity: int) -> npt.NDArray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


def top_k(row_ids: IdArray, scores: FloatArray, k: int) -> tuple[IdArray, FloatArray]:
    """Return the k best (row id, score) pairs, best first; ties go to the smaller row id."""
    if k < len(scores):
        candidates = np.argpartition(-scores, k - 1)[:k]
    else:
        candidates = np.arange(len(scores))
    order = np.lexsort((row_ids[candidates], -scores[candidates]))
    chosen = candidates[order]
    return row_ids[chosen], scores[chosen]
