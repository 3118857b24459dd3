"""Ranking metrics from ranked ids and the set of relevant ids (binary relevance): Recall, MRR, NDCG and MAP at
every cut-off in ``k_values`` (and always at 10).

Example::

    ranking_metrics([["a", "b", "c"]], [{"b"}], k_values=[1, 10])
    # {"recall@1": 0.0, "mrr@1": 0.0, ..., "recall@10": 1.0, "mrr@10": 0.5, "ndcg@10": 0.6309, "map@10": 0.5}
"""
from __future__ import annotations

import math


def ranking_metrics(rankings: list[list[str]], relevant: list[set[str]], k_values: list[int]) -> dict[str, float]:
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings for {len(relevant)} queries")
    if not rankings:
        raise ValueError("no queries to evaluate")
    ks = sorted(set(k_values) | {10})
    sums = {f"{name}@{k}": 0.0 for k in ks for name in ("recall", "ndcg", "mrr", "map")}
    for ranking, rel in zip(rankings, relevant):
        if not rel:
            raise ValueError("a query without relevant passages cannot be evaluated")
        hits = [1 if pid in rel else 0 for pid in ranking]
        for k in ks:
            top = hits[:k]
            sums[f"recall@{k}"] += sum(top) / len(rel)
            sums[f"ndcg@{k}"] += query_ndcg(ranking, rel, k)
            first = next((i for i, h in enumerate(top) if h), None)
            sums[f"mrr@{k}"] += 0.0 if first is None else 1.0 / (first + 1)
            precision_sum, found = 0.0, 0
            for i, h in enumerate(top):
                if h:
                    found += 1
                    precision_sum += found / (i + 1)
            sums[f"map@{k}"] += precision_sum / min(len(rel), k)
    n = len(rankings)
    return {key: round(value / n, 6) for key, value in sums.items()}


def query_ndcg(ranking: list[str], relevant: set[str], k: int = 10) -> float:
    """NDCG@k of one query (binary relevance): the per-query score paired comparisons resample."""
    dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(ranking[:k]) if pid in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def first_relevant_rank(ranking: list[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant passage, None when it is not in the ranking."""
    return next((i + 1 for i, pid in enumerate(ranking) if pid in relevant), None)


def recall_curve(rankings: list[list[str]], relevant: list[set[str]], ks) -> list[tuple[int, float]]:
    """(k, mean Recall@k) for each k: the curve `dvc plots` and the report draw."""
    out = []
    for k in ks:
        total = sum(len(set(r[:k]) & rel) / len(rel) for r, rel in zip(rankings, relevant) if rel)
        out.append((k, round(total / max(len(rankings), 1), 6)))
    return out
