"""Is model B really better than model A on these queries? A paired bootstrap over per-query scores.

Resamples the test queries with replacement and recomputes the mean difference B − A each time; the 2.5th and
97.5th percentiles bound the difference. A small test set with a small gap (say +0.003 NDCG@10 on 1,190 queries) is
usually a tie, and the interval says so.

Example::

    paired_bootstrap(bm25_ndcg, finetuned_ndcg, samples=2000, seed=42)
    # {"queries": 1190, "mean_a": 0.1858, "mean_b": 0.1889, "difference": 0.0031,
    #  "ci_low": -0.0133, "ci_high": 0.0191, "p_b_not_better": 0.36}
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

# (model, reference) pairs the report compares when both have per-query files; "<model>_hybrid" is the model's
# BM25-fused ranking (its per-query hybrid_ndcg@10), "<model>_reranked" that ranking reordered by the reranker
# (reranked_ndcg@10), each compared when the evaluation made it.
RANKING_SUFFIXES = ("_hybrid", "_reranked")
COMPARISONS = (("finetuned", "base"), ("merged", "base"), ("merged", "finetuned"), ("finetuned", "bm25"),
               ("merged", "bm25"), ("finetuned_hybrid", "bm25"), ("merged_hybrid", "bm25"),
               ("finetuned_reranked", "finetuned_hybrid"), ("merged_reranked", "merged_hybrid"),
               ("finetuned_reranked", "bm25"))


def paired_bootstrap(scores_a: Sequence[float], scores_b: Sequence[float], samples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """Mean difference B − A with a percentile bootstrap interval, and the fraction of resamples where B ≤ A."""
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two lists of the same length (got {a.shape} and {b.shape})")
    if len(a) == 0:
        raise ValueError("no queries to compare")
    differences = b - a
    rng = np.random.default_rng(seed)
    # One index matrix for all resamples: (samples, queries) is small for test sets of thousands of queries.
    means = differences[rng.integers(0, len(a), size=(samples, len(a)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"queries": len(a), "mean_a": round(float(a.mean()), 6), "mean_b": round(float(b.mean()), 6),
            "difference": round(float(differences.mean()), 6), "ci_low": round(float(low), 6),
            "ci_high": round(float(high), 6), "confidence": confidence,
            "p_b_not_better": round(float((means <= 0).mean()), 4)}


def pooled_bootstrap(groups: Sequence[np.ndarray], samples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """The mean gain of one change over several controlled comparisons (each a model against its twin without the
    change), with a bootstrap interval. ``groups``: one (comparisons × queries) array of per-query differences per
    query set; a resample draws each set's queries with replacement, once for all its comparisons (they share the
    queries, so their noise is correlated), and averages every comparison's mean difference with equal weight.
    The interval is over the test questions, not over further seeds.

    Example::

        pooled_bootstrap([np.array([cmrc_seed_42_diffs, cmrc_seed_7_diffs]), np.array([meddialog_diffs])])
        # {"comparisons": 3, "difference": 0.0051, "ci_low": 0.0019, "ci_high": 0.0083, "p_not_better": 0.0005, ...}
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    if not arrays or any(a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0 for a in arrays):
        raise ValueError("each group must be a non-empty (comparisons × queries) array")
    rng = np.random.default_rng(seed)
    totals = np.zeros(samples)
    for differences in arrays:
        # (samples, queries) indices, shared by the group's comparisons: each resample's per-comparison means
        # summed over the group's comparisons
        indices = rng.integers(0, differences.shape[1], size=(samples, differences.shape[1]))
        totals += differences.mean(axis=0)[indices].mean(axis=1) * differences.shape[0]
    count = sum(a.shape[0] for a in arrays)
    means = totals / count
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    each = [float(x) for a in arrays for x in a.mean(axis=1)]
    return {"comparisons": count, "queries": [a.shape[1] for a in arrays],
            "difference": round(float(np.mean(each)), 6), "ci_low": round(float(low), 6),
            "ci_high": round(float(high), 6), "confidence": confidence,
            "p_not_better": round(float((means <= 0).mean()), 4), "ahead": sum(x > 0 for x in each)}


def per_query_scores(path: str | Path, key: str = "ndcg@10") -> dict[str, float]:
    """qid → per-query score from a metrics/per_query/<name>.jsonl file (``key``: ``ndcg@10`` or
    ``hybrid_ndcg@10``). Files written before per-query NDCG was stored give it from the first relevant rank when
    the query has one positive (NDCG@10 = 1 / log2(1 + rank)); anything else is an error naming the line."""
    from bgetune.records import InputError, numbered_jsonl

    rank_key = key.split("_")[0] + "_rank" if key.startswith(("hybrid_", "reranked_")) else "rank"
    scores = {}
    for line, row in numbered_jsonl(path, ("qid",)):
        if key in row:
            scores[row["qid"]] = float(row[key])
        elif rank_key in row and len(row.get("pos_ids", [])) == 1:
            rank = row[rank_key]
            scores[row["qid"]] = 1 / math.log2(1 + rank) if rank and rank <= 10 else 0.0
        else:
            raise InputError(f"{path}: line {line}: no {key!r}, and not a single-positive query with {rank_key!r}")
    return scores


def compare_files(reference: str | Path, model: str | Path, model_key: str = "ndcg@10", samples: int = 2000,
                  seed: int = 0, reference_key: str = "ndcg@10") -> dict:
    """Paired bootstrap of ``model`` − ``reference`` over two per-query files, which must hold the same queries:
    the model's ``model_key`` (``hybrid_ndcg@10`` for its BM25-fused ranking) against the reference's
    ``reference_key`` (its NDCG@10, or its own hybrid's)."""
    a, b = per_query_scores(reference, reference_key), per_query_scores(model, model_key)
    if set(a) != set(b):
        raise ValueError(f"{model} and {reference} were evaluated on different queries ({len(b)} vs {len(a)}); "
                         "re-run the evaluate stages")
    qids = sorted(a)
    return paired_bootstrap([a[q] for q in qids], [b[q] for q in qids], samples, seed)


def compare_per_query(metrics_dir: str | Path, comparisons=COMPARISONS, samples: int = 2000, seed: int = 0) -> list:
    """Paired bootstraps of NDCG@10 for each (model, reference) in metrics_dir/per_query whose rankings both exist
    (a file, and for "<model>_hybrid" or "<model>_reranked" that ranking's scores in it)."""
    folder = Path(metrics_dir) / "per_query"
    rows = []
    for model, reference in comparisons:
        (model_file, model_key), (reference_file, reference_key) = _ranking(folder, model), _ranking(folder, reference)
        if not _has_ranking(model_file, model_key) or not _has_ranking(reference_file, reference_key):
            continue
        rows.append({"model": model, "reference": reference,
                     **compare_files(reference_file, model_file, model_key, samples, seed, reference_key)})
    return rows


def _ranking(folder: Path, name: str) -> tuple[Path, str]:
    """The per-query file and score key of a comparison's side: "finetuned_hybrid" → (finetuned.jsonl,
    hybrid_ndcg@10)."""
    for suffix in RANKING_SUFFIXES:
        if name.endswith(suffix):
            return folder / f"{name[:-len(suffix)]}.jsonl", f"{suffix[1:]}_ndcg@10"
    return folder / f"{name}.jsonl", "ndcg@10"


def _has_ranking(path: Path, key: str) -> bool:
    if not path.exists():
        return False
    if key == "ndcg@10":
        return True
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    return bool(first.strip()) and key.replace("ndcg@10", "rank") in json.loads(first)
