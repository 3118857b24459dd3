"""Train-and-evaluate variants of the pipeline on a real dataset, side by side, from one shared split.

Each variant is a set of params overrides (mining strategy, vocabulary, LoRA, …); all variants share the split, the
pairs and the seed, so their test NDCG@10 differ only by what the variant changes. BM25 and the base model are
evaluated once on the same test split.

    # issue 3: the negative-mining ablation on the medical set
    python bench/domain_runs.py --dataset meddialog --suite mining --steps 150
    # issue 4: vocabulary and LoRA variants on both sets
    python bench/domain_runs.py --dataset cmrc2018 --suite training --steps 150
    # the long runs: whole epochs on the medical set; with --eval-every, training ends on the best val weights
    python bench/domain_runs.py --dataset meddialog --suite training --variants chars_full_emb_lr --epochs 2 --steps 0
    python bench/domain_runs.py --dataset meddialog --suite training --variants chars_terms_full --epochs 3 --steps 0 \
        --eval-every 100
    # how new character rows start, before any training
    python bench/domain_runs.py --dataset meddialog --suite vocab_init --untrained-only

Every variant with vocabulary expansion also gets a row for its expanded base before training.

Data is read from $BGETUNE_SHARED_DATA (default ../shared/data); results go to
bench/results/<dataset>_<suite>.json and .md. On a 2-core CPU one variant (mine + 150 steps + eval) takes minutes.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BGETUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))

DATASETS = {
    # query = the patient's title, positive = the doctor's answer; near-identical titles kept in one split.
    "meddialog": {
        "data": {"raw_dir": str(SHARED / "meddialog"), "encoding": "auto",
                 "qa_columns": {"query": ["title"], "answer": "answer", "domain": "department"}},
        "split": {"train": 0.7, "val": 0.1, "test": 0.2, "group_by": "query_similarity", "query_similarity": 0.7},
        "chunk": {"max_chars": 400, "dedup": "near", "near_threshold": 0.9},
        "qa_gen": {"sources": ["existing"]},
    },
    "cmrc2018": {
        "data": {"raw_dir": str(SHARED / "cmrc2018")},
        "split": {"train": 0.7, "val": 0.1, "test": 0.2},
        "chunk": {"max_chars": 400},
        "qa_gen": {"sources": ["existing"]},
    },
}

SUITES = {
    # Issue 3: which negatives. "only" variants put every negative on one strategy.
    "mining": {
        "dense_only": {"mining": {"hard_ratio": 1.0, "weights": {"dense": 1.0}}},
        "bm25_only": {"mining": {"hard_ratio": 1.0, "weights": {"bm25": 1.0}}},
        "random_only": {"mining": {"hard_ratio": 0.0, "weights": {}}},
        "mix_default": {"mining": {"hard_ratio": 0.7, "weights": {"dense": 0.5, "bm25": 0.5}}},
    },
    # Issue 4: vocabulary and method. mix_default above is "characters, full" with the same params.
    # How new character rows start (vocab.init_noise); with --untrained-only: no training, the expanded bases only.
    "vocab_init": {f"init_noise_{x}": {"vocab": {"init_noise": x}} for x in (0.1, 0.5, 1.0, 2.0)},
    "training": {
        "mix_default": {"mining": {"hard_ratio": 0.7, "weights": {"dense": 0.5, "bm25": 0.5}}},
        "chars_full_emb_lr": {"train": {"embedding_lr": 1e-3}},
        "chars_terms_full": {"vocab": {"expand_terms": True, "top_terms": 500}, "train": {"embedding_lr": 1e-3}},
        "chars_lora": {"train": {"method": "lora", "lr": 2e-4, "embedding_lr": 1e-3}},
        # full fine-tuning at LoRA's learning rate: full vs LoRA at equal lr
        "chars_full_lr_2e-4": {"train": {"lr": 2e-4, "embedding_lr": 1e-3}},
    },
}
OTHER = {"meddialog": "cmrc2018", "cmrc2018": "meddialog"}


def deep_update(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "weights":
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="meddialog")
    parser.add_argument("--suite", default="mining")
    parser.add_argument("--variants", nargs="*", help="a subset of the suite's variants")
    parser.add_argument("--steps", type=int, default=150, help="training steps per variant; 0: all of --epochs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=0,
                        help="val NDCG@10 every N training steps; training ends on the best val weights (0: off)")
    parser.add_argument("--workdir", default="/tmp/bgetune-bench")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--general", action="store_true",
                        help="evaluate every model on the other dataset too (out-of-domain guard)")
    parser.add_argument("--merge", action="store_true", help="also merge 0.5/0.5 and evaluate the merged model")
    parser.add_argument("--untrained-only", action="store_true",
                        help="evaluate each variant's expanded base before training, and train nothing")
    parser.add_argument("--reuse-trained", action="store_true",
                        help="reuse a variant's fine-tuned model when it was trained with the same params")
    args = parser.parse_args()

    import torch

    from bgetune import pipeline
    from bgetune.params import params_from_dict

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3", "filelock", "dvclive", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    base_params = deep_update(DATASETS[args.dataset], {
        "train": {"epochs": args.epochs, "max_steps": args.steps, "batch_size": args.batch_size, "lr": 5e-5,
                  "checkpoint_every": 0, "log_every": 10, "eval_every": args.eval_every},
        "eval": {"k_values": [1, 5, 10, 100]},
    })
    if args.general:
        other = DATASETS[OTHER[args.dataset]]["data"]
        base_params["eval"]["general"] = {"data": other, "max_queries": 300, "max_passages": 2000}
    variants = SUITES[args.suite]
    if args.variants:
        variants = {k: variants[k] for k in args.variants}
    work = Path(args.workdir) / args.dataset
    shared_data, shared_models, shared_metrics = work / "data", work / "models", work / "metrics"
    params = params_from_dict(base_params)
    started = time.perf_counter()
    data_summary = pipeline.run_split(params, params.data.raw_dir, shared_data, shared_metrics, shared_models)
    pipeline.run_qa_gen(params, shared_data, shared_metrics)
    results = {"bm25": pipeline.run_evaluate(params, "bm25", shared_data, shared_models, shared_metrics,
                                             progress=False),
               "base": pipeline.run_evaluate(params, "base", shared_data, shared_models, shared_metrics,
                                             progress=False)}
    details = {}
    untrained_done = set()
    for name, overrides in variants.items():
        variant_params = params_from_dict(deep_update(base_params, overrides))
        # What vocabulary expansion alone gives: the expanded base before any training, once per vocabulary setting.
        vocab = variant_params.vocab
        untrained = "expanded base, untrained (" + ("characters" if vocab.expand_chars else "") + (
            " + terms" if vocab.expand_terms else "") + f", init_noise {vocab.init_noise})"
        if (vocab.expand_chars or vocab.expand_terms) and untrained not in untrained_done:
            untrained_done.add(untrained)
            results[untrained] = evaluate_expanded_base(variant_params, shared_data, shared_models)
        if args.untrained_only:
            continue
        root = work / name
        data_dir, models_dir, metrics_dir = root / "data", root / "models", root / "metrics"
        # What decides the trained weights (not the evaluation settings): reuse is safe only when these match.
        training_key = json.dumps({k: v for k, v in variant_params.model_dump().items() if k != "eval"},
                                  sort_keys=True)
        key_file = root / "training_key.json"
        # A folder trained before keys were written (same script, same variant name) is trusted; else keys match.
        reuse = (args.reuse_trained and (models_dir / "finetuned" / "modules.json").exists()
                 and (not key_file.exists() or key_file.read_text() == training_key))
        clock = time.perf_counter()
        if reuse:
            logging.info("%s: reusing the fine-tuned model in %s", name, models_dir / "finetuned")
            mining = json.loads((metrics_dir / "mining.json").read_text())
            training = json.loads((metrics_dir / "train.json").read_text())
        else:
            shutil.rmtree(root, ignore_errors=True)
            data_dir.mkdir(parents=True)
            for item in ("corpus.jsonl", "pairs"):
                (data_dir / item).symlink_to(shared_data / item)
            models_dir.mkdir()
            shutil.copy(shared_models / "base.json", models_dir / "base.json")
            mining = pipeline.run_mine(variant_params, data_dir, models_dir, metrics_dir)
            training = pipeline.run_train(variant_params, data_dir, models_dir, metrics_dir, progress=False)
            (root / "training_key.json").write_text(training_key)
        results[name] = pipeline.run_evaluate(variant_params, "finetuned", data_dir, models_dir, metrics_dir,
                                              progress=False)
        if args.merge:
            pipeline.run_merge(variant_params, data_dir, models_dir, metrics_dir, progress=False)
            results[f"{name}+merged"] = pipeline.run_evaluate(variant_params, "merged", data_dir, models_dir,
                                                              metrics_dir, progress=False)
        significance = compare_with_bm25(shared_metrics, metrics_dir, "finetuned")
        results[name].update(significance)
        if args.merge:
            results[f"{name}+merged"].update(compare_with_bm25(shared_metrics, metrics_dir, "merged"))
        details[name] = {"overrides": overrides, "negatives_per_strategy": mining["negatives_per_strategy"],
                         "drops": mining["drops"], "train_steps": training["train"]["steps"],
                         "final_loss": training["train"]["final_loss_mean"],
                         "train_seconds": training["train"]["seconds"],
                         "validation": training["train"].get("validation"),
                         "seconds": round(time.perf_counter() - clock, 1)}
        logging.info("%s: ndcg@10 %.4f (%s)", name, results[name]["ndcg@10"], details[name])
    write_results(args, data_summary, results, details, time.perf_counter() - started)


def compare_with_bm25(shared_metrics: Path, metrics_dir: Path, name: str) -> dict:
    """Paired bootstrap of the model's (and its hybrid's) per-query NDCG@10 against BM25's on the same queries."""
    from bgetune.evaluation.significance import compare_files
    from bgetune.records import InputError

    out = {}
    for prefix in ("", "hybrid_"):
        try:
            result = compare_files(shared_metrics / "per_query" / "bm25.jsonl",
                                   metrics_dir / "per_query" / f"{name}.jsonl", f"{prefix}ndcg@10", 2000, 42)
        except InputError:
            continue   # no hybrid ranking (eval.hybrid off)
        out.update({f"{prefix}vs_bm25_difference": result["difference"], f"{prefix}vs_bm25_ci_low": result["ci_low"],
                    f"{prefix}vs_bm25_ci_high": result["ci_high"]})
    return out


def evaluate_expanded_base(params, data_dir: Path, models_dir: Path) -> dict:
    from bgetune import pipeline
    from bgetune.records import read_json, read_passages

    passages = read_passages(data_dir / "corpus.jsonl")
    card = read_json(models_dir / "base.json")
    model, _ = pipeline.load_expanded_base(params, card, [p.text for p in passages])
    test = pipeline._load_test_set(params, data_dir)
    metrics, *_ = pipeline.evaluate_dense_model(params, model, card["query_instruction"], test, progress=False)
    metrics.update({"queries": len(test.pairs), "passages": len(test.ids)})
    logging.info("expanded base, untrained: ndcg@10 %.4f", metrics["ndcg@10"])
    return metrics


def write_results(args, data_summary: dict, results: dict, details: dict, seconds: float) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.dataset}_{args.suite}"
    record = {"dataset": args.dataset, "suite": args.suite, "steps": args.steps, "epochs": args.epochs,
              "batch_size": args.batch_size,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
              "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "data": data_summary["corpus"], "results": results, "variants": details,
              "seconds": round(seconds, 1)}
    (out / f"{stem}.json").write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    bm25 = results["bm25"]["ndcg@10"]
    steps = f"{args.steps} steps" if args.steps else f"{args.epochs} epochs"
    if args.untrained_only:
        steps = "no training"
    lines = [f"### {args.dataset}: {args.suite} ({steps} × batch {args.batch_size}; "
             f"{results['base']['queries']} test queries over {results['base']['passages']} passages)", "",
             "| model | NDCG@10 | Recall@1 | Recall@10 | MRR@10 | vs BM25 | − BM25 [95% CI] | hybrid NDCG@10 | "
             "pair AUC | general NDCG@10 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def optional(m, key):
        return f"{m[key]:.4f}" if key in m else "–"

    def interval(m):
        if "vs_bm25_difference" not in m:
            return "–"
        return f"{m['vs_bm25_difference']:+.4f} [{m['vs_bm25_ci_low']:+.4f}, {m['vs_bm25_ci_high']:+.4f}]"

    for name, m in results.items():
        lines.append(f"| {name} | {m['ndcg@10']:.4f} | {m['recall@1']:.4f} | {m['recall@10']:.4f} | "
                     f"{m['mrr@10']:.4f} | {m['ndcg@10'] / bm25:.2f}× | {interval(m)} | "
                     f"{optional(m, 'hybrid_ndcg@10')} | "
                     f"{optional(m, 'pair_auc')} | {optional(m, 'ood_ndcg@10')} |")
    for name, detail in details.items():
        validation = detail.get("validation")
        if validation and validation.get("history"):
            curve = ", ".join(f"{h['step']}: {h['ndcg@10']:.4f}" for h in validation["history"])
            lines += ["", f"{name}: val NDCG@10 by step ({curve}); test used the weights of step "
                          f"{validation['best_step'] if validation['restored_best'] else detail['train_steps']}."]
    lines += ["", f"Command: `python bench/{record['command']}`; total {seconds / 60:.1f} min."]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
