"""Small-to-big retrieval: does indexing each passage's sentence windows beside the passage move the dense model?

A 400-character passage holds several facts, and one vector for all of them blurs each; a question about one
sentence (CMRC's questions copy one) then finds the passage by BM25 but not by its single vector. With
``eval.windows.max_chars`` set, the evaluate stage also indexes every longer passage as windows of whole sentences
up to that many characters (overlapping by ``overlap_chars``) and scores the passage by (1 − w) × its own cosine +
w × its best vector's (itself or a window), w chosen on val — while it still returns (and is judged on) the whole
passage: the parent-document retrieval a RAG pipeline hands its LLM. This bench scores one trained model without
windows and with each window size, at the val-chosen w and at w = 1 (best vector only), through the stage's own
code (``dense_rankings(..., windows=…)``, ``tune_window_weight``, the val-tuned convex hybrid), on the same test
questions; and, so that the comparison is fair, BM25 over the same windows (a passage scores by its best entry).

    python bench/passage_windows.py --dataset cmrc2018 --variant hardness_in_batch
    python bench/passage_windows.py --dataset meddialog --variant fast_distill_dict_init_bf16_batch32_remine_hardness

Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder: its split, pairs and models/<model>), writes
bench/results/<dataset>_passage_windows.json and .md (and per-query NDCG@10 under bench/results/per_query/).
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

DEFAULT_WINDOWS = ("80:40", "120:60", "160:80")


def bm25_with_windows(texts: list[str], queries: list[str], max_chars: int, overlap_chars: int, k: int, lexical):
    """BM25 over the passages and their windows (one index); a passage scores by its best entry. Returns
    (passage indices, scores) per query, best first."""
    from bgetune.evaluation.retrieval import best_per_owner, passage_windows
    from bgetune.lexical import BM25Index

    windows, owners = passage_windows(texts, max_chars, overlap_chars)
    owners = np.concatenate([np.arange(len(texts)), owners])
    per_owner = int(np.bincount(owners).max())
    indices, scores = BM25Index(list(texts) + windows, lexical).search(queries, k * per_owner)
    return best_per_owner(indices, scores, owners, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import (add_stored_model_args, git_commit, headline_and_per_query, interval, load_stored_model,
                             machine, stored_model_footer, write_stored_model_bench)

    add_stored_model_args(parser)
    parser.add_argument("--windows", nargs="+", default=list(DEFAULT_WINDOWS),
                        help="max_chars:overlap_chars settings to score (default: %(default)s)")
    parser.add_argument("--bm25-windows", default="120:60", help="the window setting BM25 is also scored with")
    args = parser.parse_args()

    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all, tune_weights
    from bgetune.evaluation.retrieval import dense_rankings, encode_windows, tune_window_weight, window_candidates
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.evaluation.testset import load_test_set
    from bgetune.search import encode

    started = time.perf_counter()
    settings = []
    for text in args.windows:
        max_chars, _, overlap = text.partition(":")
        settings.append((int(max_chars), int(overlap or int(max_chars) // 2)))
    root, params, device, precision, model, instruction = load_stored_model(args)
    batch = params.eval.encode_batch_size
    test = load_test_set(root, params.eval, FUSION_POOL, lexical=params.lexical)
    val = load_test_set(root, params.eval, FUSION_POOL, split="val", lexical=params.lexical)
    if list(val.ids) != list(test.ids):
        raise SystemExit("val and test rank different corpora: this bench expects one corpus (bench/domain_runs.py)")
    clock = time.perf_counter()
    passage_vectors = encode(model, test.texts, batch, progress=False, kind="document", precision=precision)
    passage_seconds = time.perf_counter() - clock

    def evaluate(split, ranked_ids):
        return headline_and_per_query(ranked_ids, split.relevant)

    rows, per_query_of = [], {}
    bm25_metrics, per_query_of["bm25"] = evaluate(test, test.bm25)
    rows.append({"retriever": "bm25", "windows": None, **bm25_metrics})
    max_chars, overlap = (int(x) for x in args.bm25_windows.split(":"))
    order, _ = bm25_with_windows(test.texts, test.queries, max_chars, overlap, FUSION_POOL, params.lexical)
    metrics, per_query_of["bm25_windows"] = evaluate(test, [[test.ids[i] for i in row] for row in order])
    rows.append({"retriever": "bm25_windows", "windows": [max_chars, overlap], **metrics})
    val_queries = encode(model, val.queries, batch, instruction, False, kind="query", precision=precision)
    for setting in [None] + settings:
        clock = time.perf_counter()
        window_vectors = None
        if setting is not None:
            window_vectors = encode_windows(model, test.texts, setting, batch, precision)
        index_seconds = passage_seconds + time.perf_counter() - clock
        # Without windows one row; with them the stage's val-tuned weight, and the weight 1 (best vector only).
        weights = [(None, None)]
        if setting is not None:
            candidates = window_candidates(val_queries, passage_vectors, *window_vectors, FUSION_POOL, device)
            tuned, trials = tune_window_weight(candidates, val.ids, val.relevant)
            weights = [(tuned, trials), (1.0, None)] if tuned != 1.0 else [(1.0, trials)]
        for weight, trials in weights:
            name = "dense" if setting is None else f"dense_windows_{setting[0]}_weight_{weight:.1f}"
            ranked = {split_name: dense_rankings(model, split.texts, split.ids, split.queries, FUSION_POOL,
                                                 instruction, batch, False, passage_vectors=passage_vectors,
                                                 device=device, precision=precision, windows=setting,
                                                 window_vectors=window_vectors,
                                                 window_weight=1.0 if weight is None else weight)
                      for split_name, split in (("test", test), ("val", val))}
            metrics, per_query_of[name] = evaluate(test, ranked["test"].ids)
            hybrid_weights, _ = tune_weights("convex", ranked["val"].ids, val.bm25, val.relevant, 60,
                                             ranked["val"].scores, val.bm25_scores)
            fused = fuse_all(ranked["test"].ids, test.bm25, hybrid_weights, 60, 10, "convex",
                             ranked["test"].scores, test.bm25_scores)
            hybrid, per_query_of[f"hybrid_{name}"] = evaluate(test, fused)
            rows.append({"retriever": name, "windows": list(setting) if setting else None, "window_weight": weight,
                         "chosen_on_val": trials is not None, "val_trials": trials, **metrics,
                         "vectors": len(test.ids) + (len(window_vectors[1]) if window_vectors else 0),
                         "index_seconds": round(index_seconds, 1), "hybrid_dense_weight": hybrid_weights[0],
                         "hybrid_ndcg@10": hybrid["ndcg@10"]})
    for row in rows:
        name = row["retriever"]
        row["vs_bm25"] = paired_bootstrap(per_query_of["bm25"], per_query_of[name], args.samples, args.seed)
        if name.startswith("dense_windows"):
            row["vs_dense"] = paired_bootstrap(per_query_of["dense"], per_query_of[name], args.samples, args.seed)
            row["hybrid_vs_hybrid"] = paired_bootstrap(per_query_of["hybrid_dense"], per_query_of[f"hybrid_{name}"],
                                                       args.samples, args.seed)
        if "hybrid_ndcg@10" in row:
            row["hybrid_vs_bm25"] = paired_bootstrap(per_query_of["bm25"], per_query_of[f"hybrid_{name}"],
                                                     args.samples, args.seed)
    stem = f"{args.dataset}_passage_windows"
    record = {"command": " ".join(["python", "bench/passage_windows.py"] + sys.argv[1:]),
              "commit": git_commit(), "machine": machine(), "device": device, "precision": precision,
              "date": time.strftime("%Y-%m-%d"), "dataset": args.dataset, "variant": args.variant,
              "model": args.model, "test_queries": len(test.pairs), "val_queries": len(val.pairs),
              "passages": len(test.ids), "mean_passage_chars": round(float(np.mean([len(t) for t in test.texts])), 1),
              "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    bm25 = rows[0]["ndcg@10"]
    lines = ["| retriever | windows (chars, overlap) | window weight | vectors | index s | NDCG@10 | ÷ BM25 | Recall@10 "
             "| MRR@10 | − BM25 [95% CI] | − one vector [95% CI] | hybrid NDCG@10 (dense weight) | hybrid − "
             "one-vector hybrid [95% CI] |", "| --- " * 13 + "|"]
    for r in rows:
        windows = f"{r['windows'][0]}, {r['windows'][1]}" if r["windows"] else "–"
        weight = "–" if r.get("window_weight") is None else (
            f"{r['window_weight']:.1f}" + (" (val)" if r.get("chosen_on_val") else ""))
        hybrid = f"{r['hybrid_ndcg@10']:.4f} ({r['hybrid_dense_weight']:.1f})" if "hybrid_ndcg@10" in r else "–"
        lines.append(f"| {r['retriever']} | {windows} | {weight} | {r.get('vectors', '–')} | {r.get('index_seconds', '–')} | "
                     f"{r['ndcg@10']:.4f} | {r['ndcg@10'] / bm25:.3f}× | {r['recall@10']:.4f} | {r['mrr@10']:.4f} | "
                     f"{interval(r['vs_bm25']) if r['retriever'] != 'bm25' else '–'} | "
                     f"{interval(r.get('vs_dense'))} | {hybrid} | {interval(r.get('hybrid_vs_hybrid'))} |")
    lines += ["", stored_model_footer(args, test, val, f" (mean {record['mean_passage_chars']} characters); "
                                                        f"{device}, {precision}", record)]
    write_stored_model_bench(Path(args.out), stem, record, lines, per_query_of, test.pairs)


if __name__ == "__main__":
    main()
