"""The in-memory vector matrix: cosine similarity, in-place writes, top-k."""

from __future__ import annotations

import numpy as np
import pytest

from kernel_memory.memorydb.vectors import VectorMatrix, top_k


def matrix_of(rows: dict[int, list[float]], *, generation: int = 1) -> VectorMatrix:
    row_ids = np.array(sorted(rows), dtype=np.int64)
    vectors = np.array([rows[row_id] for row_id in sorted(rows)], dtype=np.float32)
    return VectorMatrix(vectors.shape[1], row_ids, vectors, generation=generation)


def scores_of(matrix: VectorMatrix, query: list[float], row_ids: list[int] | None = None) -> dict[int, float]:
    q = np.array(query, dtype=np.float32)
    q /= np.linalg.norm(q)
    ids, scores = matrix.cosine(q, None if row_ids is None else np.array(row_ids, dtype=np.int64))
    return {int(i): round(float(s), 5) for i, s in zip(ids, scores)}


def test_vector_matrix_cosine() -> None:
    matrix = matrix_of({1: [2, 0], 2: [1, 1], 3: [0, 0]})
    assert scores_of(matrix, [1, 0]) == {1: 1.0, 2: 0.70711, 3: 0.0}


def test_vector_matrix_cosine_of_chosen_rows() -> None:
    matrix = matrix_of({1: [1, 0], 2: [0, 1], 5: [1, 1]})
    assert scores_of(matrix, [1, 0], [5, 1, 99]) == {5: 0.70711, 1: 1.0}


def test_vector_matrix_upsert_replaces_and_appends() -> None:
    matrix = matrix_of({1: [1, 0]})
    matrix.upsert([1, 7], np.array([[0, 1], [1, 0]], dtype=np.float32))
    assert scores_of(matrix, [1, 0]) == {1: 0.0, 7: 1.0}


def test_vector_matrix_upsert_merges_smaller_row_id() -> None:
    matrix = matrix_of({1: [1, 0], 9: [0, 1]})
    matrix.upsert([4], np.array([[1, 1]], dtype=np.float32))
    ids, _ = matrix.cosine(np.array([1, 0], dtype=np.float32))
    assert ids.tolist() == [1, 4, 9]


def test_vector_matrix_delete_masks_rows() -> None:
    matrix = matrix_of({1: [1, 0], 2: [0, 1]})
    matrix.delete([1, 42])
    assert scores_of(matrix, [1, 0]) == {2: 0.0}
    assert scores_of(matrix, [1, 0], [1, 2]) == {2: 0.0}
    assert matrix.live_count == 1


def test_vector_matrix_compacts_after_many_deletes() -> None:
    count = 5000
    matrix = matrix_of({i: [1.0, float(i)] for i in range(1, count + 1)})
    matrix.delete(list(range(1, 2001)))
    assert matrix.live_count == count - 2000
    assert len(matrix.cosine(np.array([1, 0], dtype=np.float32))[0]) == count - 2000
    matrix.upsert([count + 1], np.array([[1, 0]], dtype=np.float32))
    assert matrix.live_count == count - 1999


def test_vector_matrix_grows_in_place() -> None:
    matrix = matrix_of({1: [1, 0]})
    for row_id in range(2, 3000):
        matrix.upsert([row_id], np.array([[0, 1]], dtype=np.float32))
    assert matrix.live_count == 2999
    assert scores_of(matrix, [1, 0])[1] == pytest.approx(1.0)


def test_top_k_order_and_ties() -> None:
    ids = np.array([10, 11, 12, 13], dtype=np.int64)
    scores = np.array([0.5, 0.9, 0.5, 0.1], dtype=np.float32)
    best_ids, best_scores = top_k(ids, scores, 3)
    assert best_ids.tolist() == [11, 10, 12]
    assert best_scores.tolist() == pytest.approx([0.9, 0.5, 0.5])


def test_top_k_more_than_available() -> None:
    ids = np.array([3, 1], dtype=np.int64)
    best_ids, _ = top_k(ids, np.array([0.1, 0.2], dtype=np.float32), 10)
    assert best_ids.tolist() == [1, 3]
