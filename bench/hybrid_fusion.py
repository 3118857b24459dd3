"""Rank fusion against score fusion: the dense + BM25 hybrid by RRF and by a convex sum of min-max normalised scores,
side by side on the same test queries, each fusion's weights chosen on val (as the evaluate stage does).

Reads models trained by bench/domain_runs.py (``<workdir>/<dataset>/<variant>/models/finetuned``, with that
variant's split and pairs), encodes the corpus once per model, and compares per-query NDCG@10 by paired bootstraps
(95% intervals): convex − RRF, each fusion − BM25, each fusion − the dense model alone.

    python bench/hybrid_fusion.py --dataset meddialog --variants fast_distill default
    python bench/hybrid_fusion.py --dataset cmrc2018 --variants default

Writes bench/results/<dataset>_hybrid_fusion.json and .md. The RRF row reproduces the variant's stored
hybrid_ndcg@10 (checked and recorded: ``rrf_matches_stored``), so the two fusions are compared on the same ground.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from domain_runs import git_commit, machine  # noqa: E402

METHODS = ("rrf", "convex")
KEYS = ("ndcg@10", "recall@10", "mrr@10")


def evaluate_variant(root: Path, params, samples: int, seed: int) -> dict:
    from bgetune.device import resolve_device, resolve_precision
    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all, tune_weights
    from bgetune.evaluation.metrics import query_ndcg, ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.evaluation.testset import load_test_set
    from bgetune.models import instructions, load_model

    started = time.perf_counter()
    device = resolve_device(params.model.device)
    precision = resolve_precision(params.model.precision, device)
    model = load_model(str(root / "models" / "finetuned"), device, params.model.query_max_length,
                       params.model.passage_max_length, key=f"{root}/models/finetuned")
    _, instruction = instructions(params.model, params.model.base)
    test = load_test_set(root, params.eval, FUSION_POOL, lexical=params.lexical)
    val = load_test_set(root, params.eval, FUSION_POOL, split="val", lexical=params.lexical)
    if val.ids != test.ids:
        raise SystemExit(f"{root}: val and test rank different corpora")
    batch = params.eval.encode_batch_size
    dense_test = dense_rankings(model, test.texts, test.ids, test.queries, FUSION_POOL, instruction, batch, True,
                                device=device, precision=precision)
    dense_val = dense_rankings(model, val.texts, val.ids, val.queries, FUSION_POOL, instruction, batch, False,
                               passage_vectors=dense_test.passage_vectors, device=device, precision=precision)
    rankings = {"bm25": test.bm25, "dense": dense_test.ids}
    chosen = {}
    for method in METHODS:
        weights, trials = tune_weights(method, dense_val.ids, val.bm25, val.relevant, params.eval.hybrid.rrf_k,
                                       dense_val.scores, val.bm25_scores)
        chosen[method] = {"weights": weights, "val_trials": trials}
        rankings[method] = fuse_all(dense_test.ids, test.bm25, weights, params.eval.hybrid.rrf_k, FUSION_POOL,
                                    method, dense_test.scores, test.bm25_scores)
    per_query = {name: [query_ndcg(r, rel) for r, rel in zip(ranked, test.relevant)]
                 for name, ranked in rankings.items()}
    metrics = {name: {k: round(v, 6) for k, v in ranking_metrics(ranked, test.relevant, [10]).items() if k in KEYS}
               for name, ranked in rankings.items()}
    pairs = [("rrf", "convex"), ("bm25", "rrf"), ("bm25", "convex"), ("dense", "rrf"), ("dense", "convex")]
    comparisons = {f"{b} - {a}": paired_bootstrap(per_query[a], per_query[b], samples, seed) for a, b in pairs}
    stored = json.loads((root / "metrics" / "finetuned.json").read_text(encoding="utf-8"))
    return {"queries": len(test.pairs), "passages": len(test.ids), "val_queries": len(val.pairs),
            "metrics": metrics, "weights": chosen, "comparisons": comparisons,
            "stored_hybrid_ndcg@10": stored.get("hybrid_ndcg@10"),
            "rrf_matches_stored": abs(metrics["rrf"]["ndcg@10"] - stored.get("hybrid_ndcg@10", -1)) < 1e-4,
            "seconds": round(time.perf_counter() - started, 1)}


def markdown(dataset: str, results: dict) -> list[str]:
    lines = ["| variant | retriever | NDCG@10 | Recall@10 | MRR@10 | weights [dense, BM25] (val) | − BM25 [95% CI] | "
             "− RRF [95% CI] |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def interval(c):
        return f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"

    for variant, r in results.items():
        for name in ("bm25", "dense", "rrf", "convex"):
            m = r["metrics"][name]
            weights = r["weights"].get(name, {}).get("weights", "–")
            vs_bm25 = interval(r["comparisons"][f"{name} - bm25"]) if f"{name} - bm25" in r["comparisons"] else "–"
            vs_rrf = interval(r["comparisons"]["convex - rrf"]) if name == "convex" else "–"
            lines.append(f"| {variant} | {name} | {m['ndcg@10']:.4f} | {m['recall@10']:.4f} | {m['mrr@10']:.4f} | "
                         f"{weights} | {vs_bm25} | {vs_rrf} |")
    return lines + ["", f"{dataset}: test queries {next(iter(results.values()))['queries']}; paired bootstraps over "
                        "them; fusion weights chosen on val by NDCG@10."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=["meddialog", "cmrc2018"])
    parser.add_argument("--variants", nargs="+", required=True, help="variant folders trained by domain_runs.py")
    parser.add_argument("--workdir", default="/tmp/bgetune-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    from bgetune.params import LexicalParams, load_params
    from domain_runs import WORDS_BM25

    # The BM25 its stored figures were measured with.
    params = load_params(ROOT / "params.yaml").model_copy(update={"lexical": LexicalParams(**WORDS_BM25)})
    results = {}
    for variant in args.variants:
        root = Path(args.workdir) / args.dataset / variant
        if not (root / "models" / "finetuned").is_dir():
            raise SystemExit(f"{root}/models/finetuned: no trained model (run bench/domain_runs.py first)")
        print(f"[fusion] {args.dataset}/{variant}", flush=True)
        results[variant] = evaluate_variant(root, params, args.samples, args.seed)
        print(json.dumps(results[variant]["metrics"]), flush=True)
    out = Path(args.out)
    record = {"command": " ".join(["python", "bench/hybrid_fusion.py"] + sys.argv[1:]), "commit": git_commit(),
              "machine": machine(), "date": time.strftime("%Y-%m-%d"), "dataset": args.dataset, "results": results}
    stem = f"{args.dataset}_hybrid_fusion"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = markdown(args.dataset, results)
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
