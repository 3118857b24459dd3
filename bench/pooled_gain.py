"""The mean gain of one change over several controlled comparisons: is a lever ahead across seeds and data sets?

Each ``--pair`` is a run with the change against its twin without it (same data, seed and time), as two per-query
files. Pairs on the same test questions are resampled together (one draw of the questions per resample for all of
them); each pair weighs the same in the mean. bench/significance.py tests one pair; this tests the lever.

    python bench/pooled_gain.py \\
        --pair cmrc_seed_42=$C/default.jsonl,$C/hardness_in_batch.jsonl \\
        --pair meddialog_seed_42=$M/fast_distill_dict_init_bf16_batch32_remine.jsonl,$M/…_remine_hardness.jsonl \\
        --out bench/results/hardness_pooled

Writes <out>/pooled.json and .md.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def pair_differences(pairs: list[tuple[str, str, str]], key: str = "ndcg@10") -> tuple[list, list[dict]]:
    """(groups of per-query differences by query set, one row per pair): ``pairs`` are (name, baseline file, model
    file); a pair whose two files hold different questions is an error naming it."""
    import numpy as np

    from bgetune.evaluation.significance import per_query_scores

    by_questions: dict[tuple, list] = {}
    rows = []
    for name, baseline, model in pairs:
        a, b = per_query_scores(baseline, key), per_query_scores(model, key)
        if set(a) != set(b):
            raise SystemExit(f"--pair {name}: {baseline} and {model} hold different questions "
                             f"({len(a)} and {len(b)})")
        qids = tuple(sorted(a))
        by_questions.setdefault(qids, []).append([b[q] - a[q] for q in qids])
        rows.append({"pair": name, "baseline": baseline, "model": model, "queries": len(qids),
                     "baseline_mean": round(sum(a.values()) / len(a), 6),
                     "model_mean": round(sum(b.values()) / len(b), 6),
                     "difference": round(sum(b[q] - a[q] for q in qids) / len(qids), 6)})
    return [np.array(group) for group in by_questions.values()], rows


def main() -> None:
    from bgetune.evaluation.significance import pooled_bootstrap

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True,
                        help="NAME=BASELINE.jsonl,MODEL.jsonl (repeatable): a run with the change and its twin")
    parser.add_argument("--key", default="ndcg@10", help="ndcg@10, or hybrid_ndcg@10 for the BM25-fused rankings")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    pairs = []
    for spec in args.pair:
        name, _, files = spec.partition("=")
        baseline, _, model = files.partition(",")
        if not (name and baseline and model):
            raise SystemExit(f"--pair {spec!r}: expected NAME=BASELINE.jsonl,MODEL.jsonl")
        pairs.append((name, baseline, model))
    groups, rows = pair_differences(pairs, args.key)
    pooled = pooled_bootstrap(groups, args.samples, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"command": " ".join(["pooled_gain.py"] + sys.argv[1:]), "key": args.key, "samples": args.samples,
              "seed": args.seed, "pairs": rows, "pooled": pooled}
    (out / "pooled.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    lines = [f"| pair | queries | without | with | difference ({args.key}) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['pair']} | {r['queries']} | {r['baseline_mean']:.4f} | {r['model_mean']:.4f} | "
              f"{r['difference']:+.4f} |" for r in rows]
    lines += [f"| **mean of {pooled['comparisons']} pairs** | {' + '.join(map(str, pooled['queries']))} | | | "
              f"**{pooled['difference']:+.4f} [{pooled['ci_low']:+.4f}, {pooled['ci_high']:+.4f}]** |", "",
              f"{pooled['ahead']} of {pooled['comparisons']} pairs ahead; P(not better) {pooled['p_not_better']:.4f}. "
              f"Bootstrap over the test questions ({args.samples} resamples, seed {args.seed}), each query set drawn "
              "once per resample for all its pairs; each pair weighs the same."]
    (out / "pooled.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
