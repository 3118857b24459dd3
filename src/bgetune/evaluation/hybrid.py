"""Hybrid retrieval: fuse a dense and a BM25 ranking of the same query, and choose the fusion's weights on val.

Two fusions (``eval.hybrid.method``):

- ``rrf`` — weighted reciprocal-rank fusion: score(p) = Σ_i w_i / (k + rank_i(p)) over the rankings holding p
  (ranks 1-based). It sees ranks only, so a BM25 top hit far ahead of its runner-up counts as much as a near tie.
- ``convex`` — a weighted sum of the two rankings' scores, each min-max normalised over that query's top-k list
  (1 for the list's best, 0 for its worst; a passage missing from a list gets that list's 0): score(p) =
  w_dense · dense(p) + w_bm25 · bm25(p). It keeps how far apart the scores are — the "convex combination" Bruch et
  al. (2023, "An Analysis of Fusion Functions for Hybrid Retrieval") found ahead of RRF in and out of domain,
  with its one weight fitted on a few queries.

Ties go to the passage seen first (the dense list, then BM25's).

Example::

    reciprocal_rank_fusion([["a", "b"], ["b", "c"]], weights=[1.0, 1.0], k=60)            # ["b", "a", "c"]
    convex_fusion([["a", "b"], ["b", "c"]], [[0.9, 0.1], [12.0, 3.0]], weights=[0.4, 0.6])   # ["b", "a", "c"]
    weights, trials = tune_weights("convex", dense_ids, bm25_ids, relevant, dense_scores=…, lexical_scores=…)
    chosen, options = tune_lexical("convex", dense_ids, dense_scores, {"plain": (ids, scores),
                                                                       "term_weighted": (ids2, scores2)}, relevant)
"""
from __future__ import annotations

# Each retriever's list is cut to its top FUSION_POOL before fusing, on val (where the weights are chosen) and on
# test alike: min-max normalisation depends on how deep the list is.
FUSION_POOL = 100
# RRF: BM25's weight is fixed at 1 and the dense one varies; convex: the pair sums to 1.
DENSE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
CONVEX_DENSE_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def reciprocal_rank_fusion(rankings: list[list[str]], weights: list[float], k: int = 60,
                           depth: int | None = None) -> list[str]:
    return _sorted(*rrf_scores(rankings, weights, k), depth)


def rrf_scores(rankings: list[list[str]], weights: list[float], k: int = 60) -> tuple[dict[str, float], dict[str, int]]:
    """Each passage's weighted reciprocal-rank score and the order in which the lists first name it (the
    tie-break), as ``reciprocal_rank_fusion`` ranks them."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, pid in enumerate(ranking, start=1):
            scores[pid] = scores.get(pid, 0.0) + weight / (k + rank)
            first_seen.setdefault(pid, len(first_seen))
    return scores, first_seen


def convex_fusion(rankings: list[list[str]], scores: list[list[float]], weights: list[float],
                  depth: int | None = None) -> list[str]:
    fused, first_seen = convex_scores(rankings, scores, weights)
    return _sorted(fused, first_seen, depth)


def convex_scores(rankings: list[list[str]], scores: list[list[float]],
                  weights: list[float]) -> tuple[dict[str, float], dict[str, int]]:
    """Each passage's fused score (the weighted sum of its min-max normalised scores; 0 where a list lacks it) and
    the order in which the lists first name it (the tie-break), as ``convex_fusion`` ranks them."""
    if not len(rankings) == len(scores) == len(weights):
        raise ValueError(f"{len(rankings)} rankings, {len(scores)} score lists and {len(weights)} weights")
    fused: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for ranking, ranking_scores, weight in zip(rankings, scores, weights):
        if len(ranking) != len(ranking_scores):
            raise ValueError(f"a ranking of {len(ranking)} passages with {len(ranking_scores)} scores")
        for pid in ranking:
            first_seen.setdefault(pid, len(first_seen))
            fused.setdefault(pid, 0.0)
        if not ranking:
            continue
        low, high = min(ranking_scores), max(ranking_scores)
        spread = high - low
        for pid, score in zip(ranking, ranking_scores):
            # A list whose scores are all equal says nothing about order: every member counts as its best.
            fused[pid] += weight * ((score - low) / spread if spread > 0 else 1.0)
    return fused, first_seen


def _sorted(scores: dict[str, float], first_seen: dict[str, int], depth: int | None) -> list[str]:
    fused = sorted(scores, key=lambda pid: (-scores[pid], first_seen[pid]))
    return fused[:depth] if depth else fused


def fuse_all(dense: list[list[str]], lexical: list[list[str]], weights: list[float], k: int, depth: int,
             method: str = "rrf", dense_scores: list[list[float]] | None = None,
             lexical_scores: list[list[float]] | None = None) -> list[list[str]]:
    """Every query's fused ranking of the two lists' top ``FUSION_POOL``, ``depth`` deep; ``k`` is RRF's constant
    (unused by ``convex``, which needs the two rankings' scores)."""
    return [ids for ids, _ in fuse_all_scored(dense, lexical, weights, k, depth, method, dense_scores,
                                              lexical_scores)]


def fuse_all_scored(dense: list[list[str]], lexical: list[list[str]], weights: list[float], k: int, depth: int,
                    method: str = "rrf", dense_scores: list[list[float]] | None = None,
                    lexical_scores: list[list[float]] | None = None) -> list[tuple[list[str], list[float]]]:
    """``fuse_all``'s rankings with their fused scores: per query (ids, scores), what a reranker blends with."""
    n = FUSION_POOL
    if method not in ("rrf", "convex"):
        raise ValueError(f"unknown fusion {method!r}: rrf or convex")
    if method == "convex" and (dense_scores is None or lexical_scores is None):
        raise ValueError("convex fusion needs the dense and the BM25 scores")
    out = []
    for q, (d, b) in enumerate(zip(dense, lexical)):
        if method == "rrf":
            fused, first_seen = rrf_scores([d[:n], b[:n]], weights, k)
        else:
            fused, first_seen = convex_scores([d[:n], b[:n]], [dense_scores[q][:n], lexical_scores[q][:n]], weights)
        ids = _sorted(fused, first_seen, depth)
        out.append((ids, [fused[pid] for pid in ids]))
    return out


def tune_weights(method: str, dense: list[list[str]], lexical: list[list[str]], relevant: list[set[str]],
                 k: int = 60, dense_scores=None, lexical_scores=None) -> tuple[list[float], list[dict]]:
    """[dense, bm25] weights maximising val NDCG@10: RRF varies the dense weight over ``DENSE_WEIGHTS`` with BM25's
    at 1; convex varies w over ``CONVEX_DENSE_WEIGHTS`` as [w, 1 − w]. Ties: the smaller dense weight (the simpler
    retriever). Returns the weights and every trial."""
    from bgetune.evaluation.metrics import ranking_metrics

    grid = DENSE_WEIGHTS if method == "rrf" else CONVEX_DENSE_WEIGHTS
    trials = []
    for weight in grid:
        weights = [weight, 1.0] if method == "rrf" else [weight, round(1.0 - weight, 6)]
        fused = fuse_all(dense, lexical, weights, k, 10, method, dense_scores, lexical_scores)
        trials.append({"dense_weight": weight, "weights": weights,
                       "val_ndcg@10": ranking_metrics(fused, relevant, [10])["ndcg@10"]})
    best = max(trials, key=lambda t: (t["val_ndcg@10"], -t["dense_weight"]))
    return best["weights"], trials


def tune_lexical(method: str, dense: list[list[str]], dense_scores: list[list[float]] | None,
                 lexical: dict[str, tuple[list[list[str]], list[list[float]]]], relevant: list[set[str]],
                 k: int = 60, weights: list[float] | None = None) -> tuple[str, dict[str, dict]]:
    """Which of several BM25 rankings of the same val queries (``lexical``: name → (ids, scores), e.g. plain and
    term-weighted) the fusion ranks best with: each gets its own weights (``tune_weights``; ``weights`` given: those
    fixed). Ties go to the first listed (the simpler BM25). Returns the chosen name and, per name, its weights, best
    val NDCG@10 and trials."""
    from bgetune.evaluation.metrics import ranking_metrics

    options = {}
    for name, (ids, scores) in lexical.items():
        if weights is None:
            chosen, trials = tune_weights(method, dense, ids, relevant, k, dense_scores, scores)
        else:
            fused = fuse_all(dense, ids, weights, k, 10, method, dense_scores, scores)
            chosen, trials = list(weights), [{"dense_weight": weights[0], "weights": list(weights),
                                              "val_ndcg@10": ranking_metrics(fused, relevant, [10])["ndcg@10"]}]
        options[name] = {"weights": chosen, "val_ndcg@10": max(t["val_ndcg@10"] for t in trials), "trials": trials}
    best = max(options, key=lambda name: options[name]["val_ndcg@10"])     # max keeps the first of equals
    return best, options
