"""report: results/report.html — one page that opens offline — with results/significance.json (paired-bootstrap
intervals of each NDCG@10 difference) and the Recall@k and training-loss plots.

Reads params: seed, model.base, train.method, train.loss, train.lr, train.lora.lr, train.epochs, train.batch_size,
train.temperature, train.directions, train.partition_mode, train.hardness_mode, train.hardness_strength,
train.noise_weight, train.distill_weight, train.optimizer, train.seed, mining.seed, vocab.expand_chars,
vocab.expand_terms, mining.weights, merge.search, eval.level.

Example::

    run(load_params(), root=".")
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import read_passages, write_json

log = logging.getLogger("bgetune")
OUTS = ["results/report.html", "results/significance.json", "results/plots/recall_at_k.png",
        "results/plots/train_loss.png"]


def run(params, root: str | Path = ".", progress: bool = True) -> Path:
    from bgetune.evaluation.significance import compare_per_query
    from bgetune.modelcard import describe_loss, trained_lr
    from bgetune.plots import curves
    from bgetune.records import atomic_open
    from bgetune.report import build_report

    root = Path(root)
    results = root / "results"
    significance = {f"{r['model']}_vs_{r['reference']}": {k: r[k] for k in (
        "difference", "ci_low", "ci_high", "p_b_not_better", "queries")}
        for r in compare_per_query(results, seed=params.seed)}
    for name, r in significance.items():
        log.info("significance %s: NDCG@10 %+.4f, 95%% CI [%+.4f, %+.4f]", name, r["difference"], r["ci_low"],
                 r["ci_high"])
    per_query_path = results / "per_query" / "finetuned.jsonl"
    per_query = [json.loads(line) for line in per_query_path.read_text(encoding="utf-8").splitlines() if line] \
        if per_query_path.exists() else None
    passages = read_passages(root / "data/corpus.jsonl")
    test = json.loads((results / "eval" / "finetuned.json").read_text()) if (results / "eval" /
                                                                              "finetuned.json").exists() else {}
    provenance = {"base model": params.model.base, "git commit": git_commit(root),
                  "experiment": os.environ.get("DVC_EXP_NAME", "workspace"),
                  "test queries / passages": f"{test.get('queries')} / {test.get('passages')}",
                  "evaluation level": params.eval.level,
                  "training": f"{params.train.method}, {describe_loss(params.train)}, "
                              f"lr {trained_lr(params.train)}, batch {params.train.batch_size}, "
                              f"{params.train.epochs} epoch(s), {params.train.optimizer}",
                  "vocabulary": f"characters {'on' if params.vocab.expand_chars else 'off'}, terms "
                                f"{'on' if params.vocab.expand_terms else 'off'}",
                  "negatives": json.dumps({k: w for k, w in params.mining.weights.items() if w > 0}),
                  "merge search": params.merge.search,
                  "seed": seed_line(params)}
    with StageOutputs("report", OUTS, root) as out:
        write_json(out.path("results/significance.json"), significance)
        series = {}
        for path in sorted((results / "curves").glob("*.json")):
            series[path.stem] = [(p["k"], p["recall"]) for p in json.loads(path.read_text())]
        curves(series, out.path("results/plots/recall_at_k.png"), "Recall@k on the test split", "k", "Recall@k",
               log_x=True)
        train = json.loads((results / "train.json").read_text()) if (results / "train.json").exists() else {}
        loss = [(p["step"], p["loss"]) for p in (train.get("stage1") or {}).get("loss_curve", [])]
        curves({"loss (mean per logging window)": loss}, out.path("results/plots/train_loss.png"), "Training loss",
               "step", "loss")
        # The report embeds the plots: write it after them, from the staged copies.
        staged = {Path(p).name: out.path(p) for p in OUTS if p.endswith(".png")}
        page = build_report(root, provenance, significance, per_query, {p.id: p.text for p in passages},
                            extra_plots=staged)
        with atomic_open(out.path("results/report.html")) as handle:
            handle.write(page)
    log.info("report: %s", root / "results/report.html")
    return root / "results/report.html"


RESULT_INPUTS = ("src", "stages", "dvc.yaml", "params.yaml", "pyproject.toml", "data/raw")


def git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        # Only what decides the results: a running `dvc repro` rewrites dvc.lock and metrics/ itself, and those
        # edits would mark every report "uncommitted".
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *RESULT_INPUTS],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return (commit or "unknown") + (" (with uncommitted changes)" if dirty else "")


def seed_line(params) -> str:
    """The top-level seed, and the stages' own where a run sets them (a soup's second run: same split, other
    negatives and data order)."""
    own = [f"{label} {seed}" for label, seed in (("mining", params.seed_of("mining")),
                                                  ("training", params.seed_of("train"))) if seed != params.seed]
    return f"{params.seed} ({', '.join(own)})" if own else str(params.seed)
