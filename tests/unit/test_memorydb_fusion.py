"""Fusion of vector and keyword rankings for hybrid search."""

from __future__ import annotations

import pytest

from kernel_memory.memorydb.fusion import fuse_rankings

COSINE = {1: 0.9, 2: 0.8, 3: 0.3, 4: 0.2}


def fuse(method: str, weight: float, keyword_relevance: dict[int, float] | None = None) -> list[int]:
    return fuse_rankings(
        [1, 2, 3],
        [4, 2],
        cosine=COSINE,
        keyword_relevance=keyword_relevance or {4: 1.0, 2: 0.5},
        method=method,  # type: ignore[arg-type]
        vector_weight=weight,
    )


def test_fusion_rrf_rewards_both_rankings() -> None:
    assert fuse("rrf", 0.5)[0] == 2


def test_fusion_rrf_weight_one_is_vector_order() -> None:
    assert fuse("rrf", 1.0)[:3] == [1, 2, 3]


def test_fusion_rrf_weight_zero_puts_keywords_first() -> None:
    assert fuse("rrf", 0.0)[:2] == [4, 2]


def test_fusion_linear_uses_scores() -> None:
    # 2: 0.5*0.8 + 0.5*0.5 = 0.65; 4: 0.5*0.2 + 0.5*1.0 = 0.6; 1: 0.45
    assert fuse("linear", 0.5) == [2, 4, 1, 3]


def test_fusion_ties_broken_by_cosine() -> None:
    order = fuse_rankings(
        [1], [4], cosine=COSINE, keyword_relevance={4: 1.0}, method="rrf", vector_weight=0.5
    )
    assert order == [1, 4]


def test_fusion_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown"):
        fuse("borda", 0.5)
