"""Score fusion's normalisation: does how the dense and BM25 scores are put on one scale move the hybrid?

The evaluate stage's convex fusion (``eval.hybrid.method: convex``) min-max normalises each retriever's scores over
its own top 100 and gives a passage missing from one list that list's floor (0). Bruch et al. (2023) list other
choices; this bench scores a trained model's hybrid under each, the dense weight chosen on val from a grid of 0.05
(and of 0.1, the stage's), on the same test questions:

- ``minmax`` / ``zscore``: over the retriever's top 100 (its best 1 and its 100th 0 / the pool's mean 0, std 1);
- ``minmax_all`` / ``zscore_all``: over the whole corpus;
- ``floor``: a passage outside a retriever's top 100 counts as that pool's lowest; ``exact``: its own score, on
  the same scale (below the floor, so it is pulled down by how far it falls short).

    python bench/fusion_normalisations.py --dataset meddialog \
        --variant fast_distill_dict_init_bf16_batch32_remine_hardness

Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder: its split, pairs and models/finetuned),
writes bench/results/<dataset>_fusion_normalisations.json and .md. The ``minmax``/``floor`` row is the stage's
fusion (tests/test_bench_fusion_normalisations.py checks it ranks as ``bgetune.evaluation.hybrid.convex_fusion``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

POOL = 100
NORMALISATIONS = ("minmax", "zscore", "minmax_all", "zscore_all")
FILLS = ("floor", "exact")
FINE_GRID = tuple(round(w * 0.05, 2) for w in range(21))


def normalise(scores: np.ndarray, how: str, pool: int = POOL) -> np.ndarray:
    """Each row (a query's scores over the corpus) on one scale: over its top ``pool`` or over the whole row."""
    top = -np.sort(-scores, axis=1)[:, :pool]
    if how == "minmax":
        low, high = top[:, -1:], top[:, :1]
    elif how == "minmax_all":
        low, high = scores.min(1, keepdims=True), scores.max(1, keepdims=True)
    elif how == "zscore":
        return (scores - top.mean(1, keepdims=True)) / np.maximum(top.std(1, keepdims=True), 1e-12)
    elif how == "zscore_all":
        return (scores - scores.mean(1, keepdims=True)) / np.maximum(scores.std(1, keepdims=True), 1e-12)
    else:
        raise ValueError(f"unknown normalisation {how!r}")
    spread = high - low
    # A row whose pool scores are all equal says nothing about order: every member counts as its best (as the stage).
    return np.where(spread > 0, (scores - low) / np.where(spread > 0, spread, 1.0), 1.0)


def in_pool(scores: np.ndarray, pool: int = POOL) -> np.ndarray:
    """True for each row's top ``pool`` (by score; ties broken by corpus position, as the rankings are)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, order[:, :pool], True, axis=1)
    return mask


def fuse(dense: np.ndarray, lexical: np.ndarray, dense_weight: float, how: str, fill: str,
         pool: int = POOL) -> np.ndarray:
    """Fused scores (queries × corpus); passages in neither top ``pool`` get −inf (not retrieved)."""
    scaled = []
    for scores in (dense, lexical):
        normalised, member = normalise(scores, how, pool), in_pool(scores, pool)
        if fill == "floor":
            # min-max: 0, the stage's value for a passage missing from a list (also when the pool's scores are all
            # equal and its members count 1); z-score: the pool's lowest.
            floor = 0.0 if how == "minmax" else np.where(member, normalised, np.inf).min(1, keepdims=True)
            normalised = np.where(member, normalised, floor)
        elif fill != "exact":
            raise ValueError(f"unknown fill {fill!r}")
        scaled.append((normalised, member))
    (d, dense_member), (b, lexical_member) = scaled
    fused = dense_weight * d + (1.0 - dense_weight) * b
    return np.where(dense_member | lexical_member, fused, -np.inf)


def ranked_ids(fused: np.ndarray, ids: list[str], depth: int = 10) -> list[list[str]]:
    order = np.argsort(-fused, axis=1, kind="stable")[:, :depth]
    return [[ids[i] for i in row] for row in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import add_stored_model_args, git_commit, load_stored_model, machine, stored_model_footer

    add_stored_model_args(parser)
    args = parser.parse_args()

    from bgetune.evaluation.metrics import query_ndcg, ranking_metrics
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.evaluation.testset import load_test_set
    from bgetune.search import encode

    started = time.perf_counter()
    root, params, device, precision, model, instruction = load_stored_model(args)
    test = load_test_set(root, params.eval, 10 ** 9, lexical=params.lexical)          # BM25 scores for the whole corpus
    val = load_test_set(root, params.eval, 10 ** 9, split="val", lexical=params.lexical)
    position = {pid: i for i, pid in enumerate(test.ids)}
    passages = encode(model, test.texts, params.eval.encode_batch_size, progress=False, kind="document",
                      precision=precision)

    def score_matrices(split):
        queries = encode(model, [p.query for p in split.pairs], params.eval.encode_batch_size, instruction, False,
                         kind="query", precision=precision)
        lexical = np.zeros((len(split.pairs), len(test.ids)), dtype=np.float64)
        for row, (ranked, scores) in enumerate(zip(split.bm25, split.bm25_scores)):
            lexical[row, [position[pid] for pid in ranked]] = scores
        return (queries @ passages.T).astype(np.float64), lexical

    test_dense, test_lexical = score_matrices(test)
    val_dense, val_lexical = score_matrices(val)
    stage = None
    rows = []
    for how in NORMALISATIONS:
        for fill in FILLS:
            if how.endswith("_all") and fill == "floor":
                continue   # over the whole corpus every passage has its own score: nothing to fill
            for grid_name, grid in (("0.1", FINE_GRID[::2]), ("0.05", FINE_GRID)):
                trials = [(ranking_metrics(ranked_ids(fuse(val_dense, val_lexical, w, how, fill), test.ids),
                                           val.relevant, [10])["ndcg@10"], w) for w in grid]
                val_best, weight = max(trials, key=lambda t: (t[0], -t[1]))
                ranked = ranked_ids(fuse(test_dense, test_lexical, weight, how, fill), test.ids)
                per_query = [query_ndcg(r, rel) for r, rel in zip(ranked, test.relevant)]
                row = {"normalisation": how, "fill": fill, "grid": grid_name, "dense_weight": weight,
                       "val_ndcg@10": round(val_best, 6),
                       **{k: round(v, 6) for k, v in ranking_metrics(ranked, test.relevant, [10]).items()
                          if k in ("ndcg@10", "recall@10", "mrr@10")}, "per_query": per_query}
                if (how, fill, grid_name) == ("minmax", "floor", "0.1"):
                    stage = row
                rows.append(row)
    for row in rows:
        row["vs_stage"] = paired_bootstrap(stage["per_query"], row["per_query"], args.samples, args.seed)
    for row in rows:
        del row["per_query"]
    stored = json.loads((root / "metrics" / f"{args.model}.json").read_text(encoding="utf-8"))
    record = {"command": " ".join(["python", "bench/fusion_normalisations.py"] + sys.argv[1:]),
              "commit": git_commit(), "machine": machine(), "device": device, "precision": precision,
              "date": time.strftime("%Y-%m-%d"),
              "dataset": args.dataset, "variant": args.variant, "model": args.model,
              "test_queries": len(test.pairs), "val_queries": len(val.pairs), "passages": len(test.ids),
              "stored_hybrid_ndcg@10": stored.get("hybrid_ndcg@10"), "rows": rows,
              "seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    stem = f"{args.dataset}_fusion_normalisations"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["| normalisation | fill | weight grid | dense weight (val) | val NDCG@10 | NDCG@10 | Recall@10 | MRR@10 | "
             "− the stage's fusion [95% CI] |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        c = r["vs_stage"]
        lines.append(f"| {r['normalisation']} | {r['fill']} | {r['grid']} | {r['dense_weight']:.2f} | "
                     f"{r['val_ndcg@10']:.4f} | {r['ndcg@10']:.4f} | {r['recall@10']:.4f} | {r['mrr@10']:.4f} | "
                     f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] |")
    lines += ["", stored_model_footer(args, test, val, "; the stage's fusion is minmax, floor, grid 0.1 (its stored "
                                                        f"hybrid NDCG@10: {stored.get('hybrid_ndcg@10')})", record)]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
