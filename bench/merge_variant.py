"""What the merge costs and buys on a variant bench/domain_runs.py trained: the merge stage's grid (the fine-tuned
weight against the variant's own expanded base, each weight scored on val and on the other data set as the general
set), the weight it chooses, and the merged model on the test split, paired against the fine-tuned model and BM25.

    python bench/merge_variant.py --dataset meddialog --suite hour --variant fast_distill_dict_init_300

Runs in the variant's folder under --workdir (models/merged, results/merge.json and the merged evaluation land
there), with the suite's settings read from bench/results/<dataset>_<suite>.json, so the params are the variant's.
Writes bench/results/<dataset>_<suite>_<variant>_merged.json and .md, and keeps the merged model's per-query scores
beside the suite's (bench/results/per_query/<dataset>_<suite>/<variant>+merged.jsonl).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import domain_runs as runs  # noqa: E402  (the bench's datasets, suites and base params)


def variant_params(args, settings: dict):
    """The variant's params as domain_runs built them, with the merge grid and the other data set as general set."""
    from bgetune.params import params_from_dict

    base = runs.bench_params(args.dataset, settings["steps"], settings["epochs"], settings["batch_size"],
                             settings.get("eval_every", 0), settings.get("chunk_chars", 0))
    overrides = runs.deep_update(runs.SUITES[args.suite][args.variant], {
        "merge": {"search": "grid", "keep_in_domain": args.keep_in_domain},
        "eval": {"general": {"data": runs.DATASETS[runs.OTHER[args.dataset]]["data"],
                             "max_queries": args.general_queries, "max_passages": args.general_passages}}})
    return params_from_dict(runs.variant_dict(base, overrides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(runs.DATASETS), default="meddialog")
    parser.add_argument("--suite", default="hour", choices=sorted(runs.SUITES))
    parser.add_argument("--variant", required=True)
    parser.add_argument("--keep-in-domain", type=float, default=0.98, help="merge.keep_in_domain")
    parser.add_argument("--general-queries", type=int, default=300)
    parser.add_argument("--general-passages", type=int, default=2000)
    parser.add_argument("--workdir", default="/tmp/bgetune-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[merge-bench] %(message)s")
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3", "filelock", "faiss", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from bgetune.evaluation.significance import compare_files
    from bgetune.steps import evaluate, merge

    record_path = Path(args.out) / f"{args.dataset}_{args.suite}.json"
    if not record_path.exists():
        raise SystemExit(f"{record_path}: no suite record (run bench/domain_runs.py first)")
    settings = json.loads(record_path.read_text(encoding="utf-8"))["settings"]
    if args.variant not in runs.SUITES[args.suite]:
        raise SystemExit(f"--variant {args.variant}: not a variant of suite {args.suite}")
    work = Path(args.workdir) / args.dataset
    root = work / args.variant
    if not (root / "models" / "finetuned").is_dir():
        raise SystemExit(f"{root}/models/finetuned: no trained model (run bench/domain_runs.py --variants "
                         f"{args.variant} first)")
    params = variant_params(args, settings)
    started, commit = time.perf_counter(), runs.git_commit()
    summary = merge.run(params, root, progress=False)
    merged = evaluate.run(params, "merged", root, progress=False)
    finetuned = json.loads((root / "metrics" / "finetuned.json").read_text(encoding="utf-8"))
    merged_full = json.loads((root / "results" / "eval" / "merged.json").read_text(encoding="utf-8"))
    runs.keep_per_query(work, args, [f"{args.variant}+merged"])
    files = {name: runs.per_query(work, name, args) for name in ("bm25", args.variant, f"{args.variant}+merged")}
    pairs = {}
    for reference in ("bm25", args.variant):
        for key in ("ndcg@10", "hybrid_ndcg@10"):
            # hybrid against hybrid for the fine-tuned model; against BM25's own ranking for bm25
            reference_key = key if reference != "bm25" else "ndcg@10"
            pairs[f"merged {key} - {reference}"] = compare_files(files[reference], files[f"{args.variant}+merged"],
                                                                key, 2000, 42, reference_key=reference_key)
    search = summary["search"]
    record = {"command": " ".join(["bench/merge_variant.py"] + sys.argv[1:]), "commit": commit,
              "machine": runs.machine(), "date": time.strftime("%Y-%m-%d"),
              "seconds": round(time.perf_counter() - started, 1), "settings": settings, "variant": args.variant,
              "weights": summary["weights"], "search": search,
              "test": {"finetuned": finetuned, "merged": {k: merged.get(k) for k in finetuned},
                       "merged_general": merged_full.get("general")},
              "comparisons": pairs}

    def interval(c):
        return f"{c['difference']:+.4f} [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"

    lines = [f"### {args.dataset} {args.suite}: merging `{args.variant}` with its expanded base",
             "", "| fine-tuned weight | val NDCG@10 | general NDCG@10 (" + runs.OTHER[args.dataset] + ") |",
             "| --- | --- | --- |"]
    for trial in search["trials"]:
        mark = "**" if trial["finetuned_weight"] == search["chosen_finetuned_weight"] else ""
        lines.append(f"| {mark}{trial['finetuned_weight']:.2f}{mark} | {trial['val_ndcg@10']:.4f} | "
                     f"{trial.get('ood_ndcg@10', float('nan')):.4f} |")
    lines += ["", f"Chosen: fine-tuned weight {search['chosen_finetuned_weight']:.2f} ({search['reason']}).", "",
              "| test | NDCG@10 | Recall@10 | MRR@10 | hybrid NDCG@10 |", "| --- | --- | --- | --- | --- |"]
    for name, row in (("fine-tuned", finetuned), ("merged", merged)):
        lines.append(f"| {name} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | {row['mrr@10']:.4f} | "
                     f"{row.get('hybrid_ndcg@10', float('nan')):.4f} |")
    lines += ["", "| comparison (paired bootstrap, 2,000 resamples) | difference [95% CI] |", "| --- | --- |"]
    lines += [f"| {name} | {interval(c)} |" for name, c in pairs.items()]
    runs.write_side_record(Path(args.out), f"{args.dataset}_{args.suite}_{args.variant}_merged", record, lines)


if __name__ == "__main__":
    main()
