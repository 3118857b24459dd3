"""Paired bootstrap of per-query NDCG@10: is a model's lead over a baseline more than the test set's noise?

Reads the per-query files the evaluate stage writes (results/per_query/<name>.jsonl) and compares each model with the
baseline on the same queries (matched by qid); ``--hybrid`` adds the model's BM25-fused ranking as another row,
against the baseline's NDCG@10, or with ``--hybrid-vs-hybrid`` against the baseline's own hybrid.

    python bench/significance.py --baseline bm25=results/per_query/bm25.jsonl \\
        --model finetuned=results/per_query/finetuned.jsonl --hybrid --out bench/results/significance

Writes <out>/significance.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bgetune.evaluation.significance import compare_files  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="NAME=per_query.jsonl")
    parser.add_argument("--model", action="append", required=True, help="NAME=per_query.jsonl (repeatable)")
    parser.add_argument("--hybrid", action="store_true", help="also compare each model's hybrid (BM25-fused) ranking")
    parser.add_argument("--hybrid-vs-hybrid", action="store_true",
                        help="with --hybrid: compare each model's hybrid with the baseline's hybrid, not its dense score")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    base_name, base_path = args.baseline.split("=", 1)
    rows = []
    for spec in args.model:
        name, path = spec.split("=", 1)
        for hybrid in ([False, True] if args.hybrid else [False]):
            against_hybrid = hybrid and args.hybrid_vs_hybrid
            result = compare_files(base_path, path, "hybrid_ndcg@10" if hybrid else "ndcg@10", args.samples,
                                   args.seed, "hybrid_ndcg@10" if against_hybrid else "ndcg@10")
            rows.append({"model": f"{name} (hybrid)" if hybrid else name,
                         "baseline": f"{base_name} (hybrid)" if against_hybrid else base_name, **result})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(["significance.py"] + sys.argv[1:]), "samples": args.samples, "seed": args.seed,
              "comparisons": rows}
    (out / "significance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = ["| model | NDCG@10 | baseline | baseline NDCG@10 | difference | 95% CI | P(not better) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['mean_b']:.4f} | {r['baseline']} | {r['mean_a']:.4f} | "
                     f"{r['difference']:+.4f} | "
                     f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['p_b_not_better']:.3f} |")
    lines += ["", f"Paired bootstrap over {rows[0]['queries']} queries, {args.samples} resamples, seed {args.seed}."]
    (out / "significance.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
