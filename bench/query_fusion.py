"""Query-dependent fusion: should the hybrid's dense weight depend on the query?

The evaluate stage's convex hybrid (``eval.hybrid``) fuses every query at one dense weight, chosen on val. Where
BM25's top hit stands far above its runner-up (the question shares a rare term with one answer) BM25 may deserve
more weight; where the two retrievers agree, the weight matters little. This bench splits the questions by one
label-free feature of their two rankings into 2, 3 or 4 buckets (quantiles on val), chooses each bucket's dense
weight on its val questions (the stage's 0.1 grid; ties: the smaller dense weight, as the stage) and scores test,
each question at its bucket's weight, paired against the stage's single weight:

- ``bm25_gap``: BM25's first score minus its second, over its first; ``bm25_z``: BM25's first score in standard
  deviations above its top-100's mean;
- ``dense_top``: the dense side's first score; ``dense_gap``: its first minus its second; ``dense_z``: as bm25_z;
- ``agreement``: how many of the dense top 10 are in BM25's top 10.

    python bench/query_fusion.py --dataset meddialog --variant dict_init_hardness --bm25 params

Both sides as the stage ranks them by default: the dense side with sentence windows at the val weight, BM25 as
``lexical`` (``--bm25 params``). Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder), writes
bench/results/<dataset>_query_fusion.json and .md (per-query NDCG@10 under bench/results/per_query/).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

FEATURES = ("bm25_gap", "bm25_z", "dense_top", "dense_gap", "dense_z", "agreement")
BUCKETS = (2, 3, 4)


def query_features(dense_ids: list[str], dense_scores: list[float], bm25_ids: list[str],
                   bm25_scores: list[float]) -> dict[str, float]:
    """The label-free features of one query's two rankings (each best first), as named in ``FEATURES``."""
    def z(scores: np.ndarray) -> float:
        return float((scores[0] - scores.mean()) / scores.std()) if len(scores) > 1 and scores.std() > 0 else 0.0

    d, b = np.asarray(dense_scores, dtype=float), np.asarray(bm25_scores, dtype=float)
    return {"bm25_gap": float((b[0] - b[1]) / b[0]) if len(b) > 1 and b[0] > 0 else 0.0,
            "bm25_z": z(b),
            "dense_top": float(d[0]) if len(d) else 0.0,
            "dense_gap": float(d[0] - d[1]) if len(d) > 1 else 0.0,
            "dense_z": z(d),
            "agreement": float(len(set(dense_ids[:10]) & set(bm25_ids[:10])))}


def bucket_weights(val_feature: np.ndarray, val_ndcg: np.ndarray, grid: tuple[float, ...],
                   buckets: int) -> tuple[list[float], list[float]]:
    """Quantile edges of ``val_feature`` cutting it into ``buckets``, and each bucket's grid weight with the best
    mean val NDCG@10 (``val_ndcg``: questions × grid; ties: the smaller weight; an empty bucket: the overall best)."""
    edges = [float(e) for e in np.quantile(val_feature, [i / buckets for i in range(1, buckets)])]
    overall = int(np.argmax(val_ndcg.mean(0)))        # argmax keeps the first (smallest) of equals
    member = np.digitize(val_feature, edges)
    weights = []
    for bucket in range(buckets):
        rows = val_ndcg[member == bucket]
        weights.append(grid[int(np.argmax(rows.mean(0))) if len(rows) else overall])
    return edges, weights


def per_query_at(feature: np.ndarray, ndcg: np.ndarray, grid: tuple[float, ...], edges: list[float],
                 weights: list[float]) -> np.ndarray:
    """Each question's NDCG@10 at its bucket's weight (``ndcg``: questions × grid)."""
    column = np.array([grid.index(w) for w in weights])[np.digitize(feature, edges)]
    return ndcg[np.arange(len(feature)), column]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import (add_stored_model_args, git_commit, headline_and_per_query, interval, machine,
                             stored_model_footer, stored_model_splits, write_stored_model_bench)

    add_stored_model_args(parser)
    args = parser.parse_args()

    from bgetune.evaluation.hybrid import CONVEX_DENSE_WEIGHTS, FUSION_POOL, fuse_all
    from bgetune.evaluation.metrics import query_ndcg
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.significance import paired_bootstrap

    started = time.perf_counter()
    (root, params, device, precision, model, instruction, test, val, passage_vectors, windows, window_vectors,
     window_weight) = stored_model_splits(args)
    lexical = params.lexical
    grid = CONVEX_DENSE_WEIGHTS
    splits = {}
    for name, split in (("test", test), ("val", val)):
        dense = dense_rankings(model, split.texts, split.ids, split.queries, FUSION_POOL, instruction,
                               params.eval.encode_batch_size, False, passage_vectors=passage_vectors, device=device,
                               precision=precision, windows=windows, window_vectors=window_vectors,
                               window_weight=window_weight)
        # questions × grid: each question's NDCG@10 fused at each dense weight
        ndcg = np.array([[query_ndcg(r, rel) for r, rel in zip(
            fuse_all(dense.ids, split.bm25, [w, round(1.0 - w, 6)], 60, 10, "convex", dense.scores,
                     split.bm25_scores), split.relevant)] for w in grid]).T
        features = [query_features(d, ds, b, bs) for d, ds, b, bs in zip(dense.ids, dense.scores, split.bm25,
                                                                          split.bm25_scores)]
        splits[name] = {"ndcg": ndcg, "features": {f: np.array([q[f] for q in features]) for f in FEATURES},
                        "dense": dense}
    overall = int(np.argmax(splits["val"]["ndcg"].mean(0)))
    stage_per_query = splits["test"]["ndcg"][:, overall]
    dense_metrics, dense_per_query = headline_and_per_query(splits["test"]["dense"].ids, test.relevant)
    bm25_metrics, bm25_per_query = headline_and_per_query(test.bm25, test.relevant)
    per_query_of = {"dense": dense_per_query, "bm25": bm25_per_query, "hybrid_one_weight": list(stage_per_query)}
    rows = [{"feature": "one weight (the stage)", "buckets": 1, "edges": [], "weights": [grid[overall]],
             "ndcg@10": round(float(stage_per_query.mean()), 6), "vs_one_weight": None}]
    for feature in FEATURES:
        for buckets in BUCKETS:
            edges, weights = bucket_weights(splits["val"]["features"][feature], splits["val"]["ndcg"], grid, buckets)
            per_query = per_query_at(splits["test"]["features"][feature], splits["test"]["ndcg"], grid, edges, weights)
            name = f"{feature}_{buckets}"
            per_query_of[f"hybrid_{name}"] = list(per_query)
            rows.append({"feature": feature, "buckets": buckets, "edges": [round(e, 6) for e in edges],
                         "weights": weights, "ndcg@10": round(float(per_query.mean()), 6),
                         "vs_one_weight": paired_bootstrap(list(stage_per_query), list(per_query), args.samples,
                                                           args.seed)})
    best_single_on_test = float(splits["test"]["ndcg"].mean(0).max())
    record = {"command": " ".join(["python", "bench/query_fusion.py"] + sys.argv[1:]),
              "commit": git_commit(), "machine": machine(), "device": device, "precision": precision,
              "date": time.strftime("%Y-%m-%d"), "dataset": args.dataset, "variant": args.variant,
              "model": args.model, "lexical": lexical.model_dump(), "test_queries": len(test.pairs),
              "val_queries": len(val.pairs), "passages": len(test.ids),
              "windows": list(windows) if windows else None, "window_weight": window_weight,
              "dense": dense_metrics, "bm25": bm25_metrics, "rows": rows,
              "best_one_weight_on_test": {"dense_weight": grid[int(np.argmax(splits["test"]["ndcg"].mean(0)))],
                                          "ndcg@10": round(best_single_on_test, 6)},
              "seconds": round(time.perf_counter() - started, 1)}
    lines = ["| dense weight by | buckets | weights (val) | hybrid NDCG@10 | − one weight [95% CI] | ÷ BM25 |",
             "| --- " * 6 + "|"]
    for r in rows:
        lines.append(f"| {r['feature']} | {r['buckets']} | {' / '.join(f'{w:.1f}' for w in r['weights'])} | "
                     f"{r['ndcg@10']:.4f} | {interval(r['vs_one_weight'])} | "
                     f"{r['ndcg@10'] / bm25_metrics['ndcg@10']:.3f}× |")
    lines += ["", f"Dense alone {dense_metrics['ndcg@10']:.4f}, BM25 ({lexical.tokens}) {bm25_metrics['ndcg@10']:.4f}; "
              f"the best single weight chosen on test itself (an upper bound, not a result): "
              f"{record['best_one_weight_on_test']['dense_weight']:.1f}, {best_single_on_test:.4f}.",
              "", stored_model_footer(args, test, val, f"; {device}, {precision}", record)]
    write_stored_model_bench(Path(args.out), f"{args.dataset}_query_fusion", record, lines, per_query_of, test.pairs)


if __name__ == "__main__":
    main()
