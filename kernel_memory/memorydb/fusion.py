"""Hybrid search: fusing the vector ranking and the keyword ranking into one order.

Two methods, chosen per memory DB:

- "rrf", weighted reciprocal rank fusion: score = w / (k + vector rank) +
  (1 - w) / (k + keyword rank), with 1-based ranks and a missing rank adding
  nothing. It uses ranks only, so it is immune to the different scales of
  cosine similarity and bm25. k = 60 is the value of the original RRF paper
  (Cormack, Clarke and Büttcher, SIGIR 2009).
- "linear": score = w * cosine similarity + (1 - w) * keyword relevance, where
  keyword relevance is the bm25 score as a fraction of the best one (0 when the
  record has no keyword match).

The fused score only orders the results. The relevance reported stays the
record's cosine similarity, so `minRelevance` means the same with and without
keywords.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

FusionMethod = Literal["rrf", "linear"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("rrf", "linear")

DEFAULT_FUSION: FusionMethod = "rrf"
DEFAULT_RRF_K = 60.0


def fuse_rankings(
    vector_ranking: Sequence[int],
    keyword_ranking: Sequence[int],
    *,
    cosine: Mapping[int, float],
    keyword_relevance: Mapping[int, float],
    method: FusionMethod,
    vector_weight: float,
    rrf_k: float = DEFAULT_RRF_K,
) -> list[int]:
    """Merge two rankings of record ids, best first, into one order by fused score.

    Args:
        vector_ranking: ids by descending cosine similarity.
        keyword_ranking: ids by descending bm25 score.
        cosine: cosine similarity of every id in either ranking.
        keyword_relevance: 0..1 keyword relevance of the ids in `keyword_ranking`.
        method: "rrf" or "linear", see the module docstring.
        vector_weight: 0..1 weight of the vector side; 1 - vector_weight goes to keywords.
        rrf_k: the k of reciprocal rank fusion; larger values flatten the rank differences.

    Ties are broken by cosine similarity and then by id, so the order is deterministic.
    """
    keyword_weight = 1.0 - vector_weight
    scores: dict[int, float] = {}

    if method == "rrf":
        for rank, record_id in enumerate(vector_ranking, start=1):
            scores[record_id] = scores.get(record_id, 0.0) + vector_weight / (rrf_k + rank)
        for rank, record_id in enumerate(keyword_ranking, start=1):
            scores[record_id] = scores.get(record_id, 0.0) + keyword_weight / (rrf_k + rank)
    elif method == "linear":
        for record_id in (*vector_ranking, *keyword_ranking):
            scores[record_id] = vector_weight * max(cosine[record_id], 0.0) + keyword_weight * (
                keyword_relevance.get(record_id, 0.0)
            )
    else:
        raise ValueError(f"fusion method {method!r} is unknown: use one of {FUSION_METHODS}")

    return sorted(scores, key=lambda record_id: (-scores[record_id], -cosine[record_id], record_id))
