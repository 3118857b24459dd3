"""Are the mining and training stages bit-identical from one process to the next on this machine?

Reuses a finished ``bench/domain_runs.py`` variant folder (its split, pairs, expanded base and negatives): process A
mines the negatives again in a fresh folder and trains ``--steps`` steps on them; process B trains the same steps on
the variant's own negatives. Each runs with its own PYTHONHASHSEED. Equal MD5s of the negatives (A vs the variant)
and of the weights (A vs B) mean the stages are deterministic here; a difference between days then comes from the
machine, not the code.

    python bench/domain_runs.py --dataset meddialog --suite levers --steps 150 --variants default
    python bench/determinism.py --dataset meddialog --variant default --steps 5

Writes bench/results/determinism_<dataset>.json and .md.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import domain_runs as runs  # noqa: E402  (the bench's datasets, suites and base params)

INPUTS = ("data/corpus.jsonl", "data/existing_pairs.jsonl", "data/splits.json", "data/pairs", "results/data.json",
          "results/qa_gen.json", "results/vocab.json")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def one_process(args) -> None:
    """Inside a child process: mine (or link the variant's negatives) and train in a fresh folder."""
    from bgetune.params import params_from_dict
    from bgetune.steps import mine_negatives, train

    base = runs.bench_params(args.dataset, args.steps, 1, args.batch_size)
    params = params_from_dict(runs.deep_update(base, runs.SUITES[args.suite][args.variant]))
    source, root = Path(args.source), Path(args.root)
    runs.project_from_variant(source, root, INPUTS)
    if args.mine:
        mine_negatives.run(params, root, progress=False)
    else:
        (root / "data/train.jsonl").symlink_to((source / "data/train.jsonl").resolve())
    train.run(params, root, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="meddialog")
    parser.add_argument("--suite", default="levers")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", default="/tmp/bgetune-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mine", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return one_process(args)

    source = Path(args.workdir) / args.dataset / args.variant
    if not (source / "data/train.jsonl").exists():
        raise SystemExit(f"{source}: no finished variant here; "
                         f"run bench/domain_runs.py --variants {args.variant} first")
    started, commit = time.perf_counter(), runs.git_commit()
    folders = {}
    for name, hash_seed, mine in (("a", "1", True), ("b", "2", False)):
        folder = Path(args.workdir) / args.dataset / f"determinism_{name}"
        command = [sys.executable, __file__, "--child", "--dataset", args.dataset, "--suite", args.suite,
                   "--variant", args.variant, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                   "--source", str(source), "--root", str(folder)] + (["--mine"] if mine else [])
        subprocess.run(command, check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        folders[name] = folder
    weights = "models/finetuned/model.safetensors"
    record = {"dataset": args.dataset, "variant": args.variant, "steps": args.steps,
              "machine": runs.machine(), "device": "cpu",
              "negatives_md5": {"variant": md5(source / "data/train.jsonl"),
                                "a (re-mined)": md5(folders["a"] / "data/train.jsonl")},
              "weights_md5": {"a": md5(folders["a"] / weights), "b": md5(folders["b"] / weights)},
              "command": " ".join(["bench/determinism.py"] + sys.argv[1:]),
              "commit": commit, "date": time.strftime("%Y-%m-%d"),
              "seconds": round(time.perf_counter() - started, 1)}
    record["negatives_identical"] = len(set(record["negatives_md5"].values())) == 1
    record["weights_identical"] = len(set(record["weights_md5"].values())) == 1
    lines = [f"### {args.dataset} `{args.variant}`: two fresh processes (PYTHONHASHSEED 1 and 2)", "",
             "| what | identical | MD5s |", "| --- | --- | --- |",
             f"| negatives (re-mined vs the variant's) | {record['negatives_identical']} | "
             f"{', '.join(record['negatives_md5'].values())} |",
             f"| weights after {args.steps} training steps | {record['weights_identical']} | "
             f"{', '.join(record['weights_md5'].values())} |"]
    runs.write_side_record(Path(args.out), f"determinism_{args.dataset}", record, lines)


if __name__ == "__main__":
    main()
