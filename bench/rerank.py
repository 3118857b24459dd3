"""A cross-encoder reranker over the hybrid's top k: does reading question and passage together beat the hybrid?

Every hybrid lever measured so far (fusions, normalisations, windows, a stronger BM25, feedback, a weight per kind
of question) moved meddialog's hybrid by under 0.007: it follows the dense model, whose two towers never see the
question and the passage at once. A cross-encoder does (FlagEmbedding's bge-reranker recipe). This bench trains one
with sentence-transformers' CrossEncoderTrainer and scores it where a RAG pipeline would put it:

1. the hybrid as the evaluate stage fuses it (convex, the dense weight chosen on val) gives each question's top k;
2. a cross-encoder starts from the stored bi-encoder's weights (its new Chinese rows are trained; the scoring
   head is new) and learns on the run's own train.jsonl groups: the positive against the mined hard negatives and
   in-batch random ones, a softmax over each group (FlagEmbedding's reranker loss; sentence-transformers'
   cross-encoder ``MultipleNegativesRankingLoss`` with raw logits);
3. each top-k passage is scored; the final order is w · reranker + (1 − w) · hybrid, each min-max normalised over
   the question's k, w chosen on val from 0, 0.1, …, 1 (w = 1: the reranker alone; w = 0: the hybrid's order).

    python bench/rerank.py --dataset meddialog --variant dict_init_hardness --bm25 params

Both retrievers as the stage ranks them by default: the dense side with sentence windows at the val weight, BM25
as ``lexical`` (``--bm25 params``). Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder); the
reranker is saved under its models/reranker_<settings> and reused by a rerun with the same settings. Writes
bench/results/<dataset>_rerank.json and .md (per-query NDCG@10 under bench/results/per_query/). Training, scoring
and the blend are the rerank stage's code (bgetune.training.reranker, bgetune.reranking).
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

def bench_settings(args):
    """The rerank params section for the bench's arguments (the stage's trainer reads its settings from it)."""
    from bgetune.params import RerankParams

    return RerankParams(enabled=True, hard_negatives=args.hard_negatives, random_negatives=args.random_negatives,
                        batch_size=args.batch_size, epochs=args.epochs, lr=args.lr, max_length=args.max_length,
                        predict_batch_size=args.predict_batch, checkpoint_every=0, top_k=args.top_k)


def sampled_groups(train_file: Path, questions: int, hard_negatives: int, seed: int) -> list[dict]:
    """``questions`` of the run's training groups as the rerank stage builds them (all when 0), reporting the
    questions left out for too few negatives."""
    from bgetune.records import read_train_examples
    from bgetune.training.reranker import training_groups

    groups, left_out = training_groups(read_train_examples(train_file), hard_negatives, seed)
    if left_out:
        print(f"reranker training: {left_out} of {len(groups) + left_out} groups have fewer than {hard_negatives} "
              "negatives and are left out")
    return groups[:questions] if questions else groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import (add_stored_model_args, git_commit, headline_and_per_query, interval, machine,
                             stored_model_footer, stored_model_splits, write_stored_model_bench)

    add_stored_model_args(parser)
    parser.add_argument("--top-k", type=int, default=20, help="the hybrid's top k that the reranker reorders")
    parser.add_argument("--train-questions", type=int, default=2000, help="training groups (0: all)")
    parser.add_argument("--hard-negatives", type=int, default=3)
    parser.add_argument("--random-negatives", type=int, default=1, help="in-batch negatives per question")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--predict-batch", type=int, default=64)
    args = parser.parse_args()
    if args.top_k < 10:
        parser.error(f"--top-k {args.top_k}: NDCG@10 needs the hybrid's top 10 at least")

    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all_scored, tune_weights
    from bgetune.evaluation.metrics import query_ndcg
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.reranking import WEIGHTS, blend, load_reranker, score_candidates, tune_weight
    from bgetune.training.reranker import init_folder, train_reranker

    started = time.perf_counter()
    (root, params, device, precision, model, instruction, test, val, passage_vectors, windows, window_vectors,
     window_weight) = stored_model_splits(args)
    lexical = params.lexical

    def hybrid_top(split, dense, weight):
        """Each question's top k of the convex hybrid at ``weight``: (ids, fused scores), as the stage fuses."""
        return fuse_all_scored(dense.ids, split.bm25, [weight, round(1.0 - weight, 6)], 60, args.top_k, "convex",
                               dense.scores, split.bm25_scores)

    dense_of = {name: dense_rankings(model, split.texts, split.ids, split.queries, FUSION_POOL, instruction,
                                     params.eval.encode_batch_size, False, passage_vectors=passage_vectors,
                                     device=device, precision=precision, windows=windows,
                                     window_vectors=window_vectors, window_weight=window_weight)
                for name, split in (("test", test), ("val", val))}
    # the stage's own choice of the dense weight on val (its grid and its tie rule)
    (dense_weight, _), _ = tune_weights("convex", dense_of["val"].ids, val.bm25, val.relevant,
                                        dense_scores=dense_of["val"].scores, lexical_scores=val.bm25_scores)
    tops = {"test": hybrid_top(test, dense_of["test"], dense_weight), "val": hybrid_top(val, dense_of["val"],
                                                                                       dense_weight)}
    del model

    settings = (f"q{args.train_questions}_h{args.hard_negatives}_r{args.random_negatives}_b{args.batch_size}"
                f"_e{args.epochs:g}_lr{args.lr:g}_len{args.max_length}_s{args.seed}")
    out_dir = root / "models" / f"reranker_{settings}"
    training = json.loads((out_dir / "bench_training.json").read_text()) if (out_dir / "bench_training.json").exists() \
        else None
    if training:
        print(f"reusing the reranker in {out_dir}")
    else:
        groups = sampled_groups(root / "data" / "train.jsonl", args.train_questions, args.hard_negatives, args.seed)
        print(f"training a reranker on {len(groups)} groups (1 positive, {args.hard_negatives} hard and "
              f"{args.random_negatives} in-batch negatives each) on {device}")
        init_dir = init_folder(root / "models" / args.model, root / "models" / ".reranker_init")
        training = train_reranker(init_dir, out_dir, groups, bench_settings(args), args.seed, device, precision)
        training["groups"] = len(groups)
        (out_dir / "bench_training.json").write_text(json.dumps(training, indent=2) + "\n")
    print(f"reranker training: {training}")
    reranker = load_reranker(out_dir, args.max_length, device)

    scored = {}
    for name, split in (("val", val), ("test", test)):
        t = time.perf_counter()
        scored[name] = score_candidates(reranker, split.queries, [ids for ids, _ in tops[name]],
                                        lambda pid, split=split: split.texts[split.index_of[pid]], args.predict_batch,
                                        precision)
        print(f"{name}: {sum(len(ids) for ids, _ in tops[name])} pairs scored in {time.perf_counter() - t:.0f} s")

    def per_query(name, split, weight):
        return [query_ndcg(blend(ids, hs, rs, weight), rel)
                for (ids, hs), rs, rel in zip(tops[name], scored[name], split.relevant)]

    # the stage's choice on val (its grid and its tie rule: the smaller weight)
    chosen, trials = tune_weight(tops["val"], scored["val"], val.relevant)
    val_by_weight = [t["val_ndcg@10"] for t in trials]
    hybrid_per_query = per_query("test", test, 0.0)
    alone_per_query = per_query("test", test, 1.0)
    blended_per_query = per_query("test", test, chosen)
    dense_metrics, dense_per_query = headline_and_per_query(dense_of["test"].ids, test.relevant)
    bm25_metrics, bm25_per_query = headline_and_per_query(test.bm25, test.relevant)
    hybrid_metrics, _ = headline_and_per_query([ids for ids, _ in tops["test"]], test.relevant)
    reranked_metrics, _ = headline_and_per_query(
        [blend(ids, hs, rs, chosen) for (ids, hs), rs in zip(tops["test"], scored["test"])], test.relevant)
    alone_metrics, _ = headline_and_per_query(
        [blend(ids, hs, rs, 1.0) for (ids, hs), rs in zip(tops["test"], scored["test"])], test.relevant)
    recall_k = float(np.mean([bool(set(ids) & rel) for (ids, _), rel in zip(tops["test"], test.relevant)]))

    def compare(baseline, model_scores):
        return paired_bootstrap(list(baseline), list(model_scores), args.samples, args.seed)

    rows = [{"key": "bm25", "name": f"BM25 ({lexical.tokens})", "metrics": bm25_metrics,
             "per_query": bm25_per_query},
            {"key": "dense", "name": "dense", "metrics": dense_metrics, "per_query": dense_per_query},
            {"key": "hybrid", "name": f"hybrid (dense weight {dense_weight:.1f})", "metrics": hybrid_metrics,
             "per_query": hybrid_per_query},
            {"key": "reranker_alone", "name": f"reranker alone over the hybrid's top {args.top_k}",
             "metrics": alone_metrics, "per_query": alone_per_query},
            {"key": "reranker_hybrid", "name": f"reranker + hybrid (reranker weight {chosen:.1f}, val)",
             "metrics": reranked_metrics, "per_query": blended_per_query}]
    for row in rows:
        row["vs_bm25"] = compare(bm25_per_query, row["per_query"]) if row["per_query"] is not bm25_per_query else None
        row["vs_hybrid"] = compare(hybrid_per_query, row["per_query"]) if row["key"].startswith("reranker") else None
    record = {"command": " ".join(["python", "bench/rerank.py"] + sys.argv[1:]),
              "commit": git_commit(), "machine": machine(), "device": device, "precision": precision,
              "date": time.strftime("%Y-%m-%d"), "dataset": args.dataset, "variant": args.variant,
              "model": args.model, "lexical": lexical.model_dump(), "test_queries": len(test.pairs),
              "val_queries": len(val.pairs), "passages": len(test.ids), "top_k": args.top_k,
              "hybrid_recall_at_top_k": round(recall_k, 6), "hybrid_dense_weight": dense_weight,
              "windows": list(windows) if windows else None, "window_weight": window_weight,
              "reranker": {"settings": settings, **{k: v for k, v in vars(args).items()
                                                    if k not in ("dataset", "variant", "model", "workdir", "out")},
                           "training": training},
              "val_ndcg_by_reranker_weight": dict(zip(map(str, WEIGHTS), [round(v, 6) for v in val_by_weight])),
              "rows": [{k: v for k, v in r.items() if k != "per_query"} for r in rows],
              "seconds": round(time.perf_counter() - started, 1)}
    lines = ["| ranking | NDCG@10 | Recall@10 | MRR@10 | ÷ BM25 | − BM25 [95% CI] | − hybrid [95% CI] |",
             "| --- " * 7 + "|"]
    for r in rows:
        m = r["metrics"]
        lines.append(f"| {r['name']} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['mrr@10']:.4f} | "
                     f"{m['ndcg@10'] / bm25_metrics['ndcg@10']:.3f}× | {interval(r['vs_bm25'])} | "
                     f"{interval(r['vs_hybrid'])} |")
    lines += ["", f"The hybrid's top {args.top_k} holds a relevant passage for {recall_k:.3f} of the test questions "
              f"(the most any reordering of it can reach). Reranker: {training['groups']} training groups, "
              f"{training['steps']} steps in {training['seconds'] / 60:.1f} min (loss {training['first_loss']} → "
              f"{training['final_loss']}); settings {settings}.",
              "", stored_model_footer(args, test, val, f"; {device}, {precision}", record)]
    write_stored_model_bench(Path(args.out), f"{args.dataset}_rerank", record, lines,
                             {r["key"]: r["per_query"] for r in rows}, test.pairs)


if __name__ == "__main__":
    main()
