"""Hybrid retrieval by weighted reciprocal-rank fusion (RRF) of several rankings (e.g. dense + BM25), and the
choice of the weights on the val split.

score(p) = Σ_i w_i / (k + rank_i(p)), over the rankings that contain p (ranks 1-based); ties by first appearance.

Example::

    reciprocal_rank_fusion([["a", "b"], ["b", "c"]], weights=[1.0, 1.0], k=60)   # ["b", "a", "c"]
    best, trials = tune_dense_weight(dense_rankings, bm25_rankings, relevant, k=60)
"""
from __future__ import annotations

DENSE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


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


def fuse_all(dense: list[list[str]], lexical: list[list[str]], weights: list[float], k: int, depth: int):
    return [reciprocal_rank_fusion([d, b], weights, k, depth) for d, b in zip(dense, lexical)]


def tune_dense_weight(dense: list[list[str]], lexical: list[list[str]], relevant: list[set[str]], k: int,
                      grid=DENSE_WEIGHTS) -> tuple[list[float], list[dict]]:
    """[dense weight, 1.0] maximising val NDCG@10 over ``grid`` (BM25's weight fixed at 1); ties: the smaller
    dense weight. Returns the weights and every trial."""
    from bgetune.evaluation.metrics import ranking_metrics

    trials = []
    for weight in grid:
        fused = fuse_all(dense, lexical, [weight, 1.0], k, 10)
        trials.append({"dense_weight": weight, "val_ndcg@10": ranking_metrics(fused, relevant, [10])["ndcg@10"]})
    best = max(trials, key=lambda t: (t["val_ndcg@10"], -t["dense_weight"]))
    return [best["dense_weight"], 1.0], trials
