"""Hybrid retrieval by weighted reciprocal-rank fusion (RRF) of several rankings (e.g. dense + BM25).

score(p) = Σ_i w_i / (k + rank_i(p)), over the rankings that contain p (ranks 1-based); ties by first appearance.

Example::

    reciprocal_rank_fusion([["a", "b"], ["b", "c"]], weights=[1.0, 1.0], k=60)   # ["b", "a", "c"]
"""
from __future__ import annotations


def reciprocal_rank_fusion(rankings: list[list[str]], weights: list[float], k: int = 60,
                           depth: int | None = None) -> list[str]:
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    position = 0
    for ranking, weight in zip(rankings, weights):
        for rank, pid in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
            if pid not in first_seen:
                first_seen[pid] = position
                position += 1
    fused = sorted(scores, key=lambda pid: (-scores[pid], first_seen[pid]))
    return fused[:depth] if depth else fused
