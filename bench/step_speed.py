"""Seconds per training step of the real train stage on real batches, for training settings side by side.

Reuses a finished ``bench/domain_runs.py`` variant folder (its expanded base and mined negatives, so the batches
have the data set's real length spread) and runs the train stage for ``--steps`` steps once per setting, each in
its own process, the settings in alternating order over ``--repeats``. The first ``--warmup`` steps of each run are
not timed. Every setting is reported as s/step and as the ratio of the first setting's s/step to its own (above 1:
faster). Settings are params overrides of the train section:

- ``one_pass``: each column embedded in one pass, padded to the batch's longest text (``length_chunk_size: 0``);
- ``chunks_8`` / ``chunks_16`` / ``chunks_32``: length-sorted chunks of that many texts (16 is the default);
- ``chunks_16_attention_dropout_0``: the default chunks with ``attention_dropout: 0``;
- ``chunks_16_attention_dropout_0_bf16``: the same under bf16 autocast (``train.precision: bf16``; CPUs with
  AVX512-BF16 or AMX multiply bf16 at about twice fp32's rate);
- ``full_attention_dropout_0``, ``lora_dropout_0_05_attention_dropout_0``, ``lora_dropout_0_attention_dropout_0``:
  full fine-tuning against LoRA (``train.lora.dropout`` 0.05, the default, and 0), on a LoRA variant's folder.

    python bench/domain_runs.py --dataset meddialog --suite levers --steps 150 --variants default
    python bench/step_speed.py --dataset meddialog --variant default

    # bf16 against fp32 on the hour recipe, in its own file
    python bench/step_speed.py --dataset meddialog --suite hour --variant fast_distill --tag bf16 \
        --settings chunks_16_attention_dropout_0 chunks_16_attention_dropout_0_bf16

Writes bench/results/step_speed_<dataset>[_<tag>].json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import domain_runs as runs  # noqa: E402  (the bench's datasets, suites and base params)

INPUTS = ("data/corpus.jsonl", "data/splits.json", "data/pairs", "data/train.jsonl", "results/vocab.json")
# Each setting names all three knobs it is about, so that it means the same on any variant (a bf16 variant timed
# under "chunks_16" runs fp32 with the model's attention dropout, as the name says).
FP32 = {"attention_dropout": None, "precision": "auto"}    # auto: fp32 on a CPU
SETTINGS = {
    "one_pass": {"length_chunk_size": 0, **FP32},
    "chunks_8": {"length_chunk_size": 8, **FP32},
    "chunks_16": {"length_chunk_size": 16, **FP32},
    "chunks_32": {"length_chunk_size": 32, **FP32},
    "chunks_16_attention_dropout_0": {"length_chunk_size": 16, "attention_dropout": 0.0, "precision": "auto"},
    "chunks_16_attention_dropout_0_bf16": {"length_chunk_size": 16, "attention_dropout": 0.0, "precision": "bf16"},
    # Full fine-tuning against LoRA with and without peft's dropout on each adapted layer's input (a LoRA variant's
    # folder: its params set the adapters; these set the method and the dropout), all without attention dropout.
    "full_attention_dropout_0": {"method": "full", "length_chunk_size": 16, "attention_dropout": 0.0,
                                 "precision": "auto"},
    "lora_dropout_0_05_attention_dropout_0": {"method": "lora", "lora": {"dropout": 0.05}, "length_chunk_size": 16,
                                              "attention_dropout": 0.0, "precision": "auto"},
    "lora_dropout_0_attention_dropout_0": {"method": "lora", "lora": {"dropout": 0.0}, "length_chunk_size": 16,
                                           "attention_dropout": 0.0, "precision": "auto"},
}


def setting_params(dataset: str, suite: str, variant: str, setting: str, steps: int, batch_size: int) -> dict:
    """The params one timed run trains with: the variant's, its train section overridden by the setting, for
    ``steps`` steps (a variant's ``steps_factor`` sets how long it trains in the suite, not how long it is timed)."""
    variant_overrides = {k: v for k, v in runs.SUITES[suite][variant].items() if k != "steps_factor"}
    base = runs.bench_params(dataset, steps, 1, batch_size)
    return runs.deep_update(base, runs.deep_update(variant_overrides, {"train": SETTINGS[setting]}))


def one_process(args) -> None:
    """Inside a child process: train ``--steps`` steps with one setting and print the per-step seconds as JSON."""
    from bgetune.params import params_from_dict
    from bgetune.steps import train
    from bgetune.training import trainer

    params = params_from_dict(setting_params(args.dataset, args.suite, args.variant, args.setting, args.steps,
                                             args.batch_size))
    source, root = Path(args.source), Path(args.root)
    runs.project_from_variant(source, root, INPUTS)
    # Time the Trainer's training_step (forward, backward) plus the optimizer step that follows it: the interval
    # between the starts of consecutive steps, which is what a run's wall time is made of.
    starts = []
    original = trainer.BgetuneTrainer.training_step

    def timed_step(self, *a, **kw):
        starts.append(time.perf_counter())
        return original(self, *a, **kw)

    trainer.BgetuneTrainer.training_step = timed_step
    train.run(params, root, progress=False)
    intervals = [b - a for a, b in zip(starts, starts[1:])]
    print("STEP_SECONDS " + json.dumps(intervals))
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="meddialog")
    parser.add_argument("--suite", default="levers")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=9, help="training steps per run (the last has no interval)")
    parser.add_argument("--warmup", type=int, default=2, help="first step intervals not timed")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", default="/tmp/bgetune-bench")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--tag", default="", help="suffix of the result files (keeps another comparison's)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return one_process(args)
    if args.steps - 1 <= args.warmup:
        raise SystemExit(f"--steps ({args.steps}) must exceed --warmup + 1 ({args.warmup + 1})")

    source = Path(args.workdir) / args.dataset / args.variant
    if not (source / "data/train.jsonl").exists():
        raise SystemExit(f"{source}: no finished variant here; "
                         f"run bench/domain_runs.py --dataset {args.dataset} --variants {args.variant} first")
    started, commit = time.perf_counter(), runs.git_commit()
    timed: dict[str, list[float]] = {name: [] for name in args.settings}
    for repeat in range(args.repeats):
        order = args.settings if repeat % 2 == 0 else list(reversed(args.settings))
        for name in order:
            command = [sys.executable, __file__, "--child", "--dataset", args.dataset, "--suite", args.suite,
                       "--variant", args.variant, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                       "--setting", name, "--source", str(source),
                       "--root", str(Path(args.workdir) / args.dataset / "step_speed")]
            result = subprocess.run(command, check=True, capture_output=True, text=True)
            line = next(x for x in result.stdout.splitlines() if x.startswith("STEP_SECONDS "))
            intervals = json.loads(line[len("STEP_SECONDS "):])[args.warmup:]
            timed[name].extend(intervals)
            print(f"[step_speed] repeat {repeat + 1} {name}: {statistics.mean(intervals):.2f} s/step", flush=True)
    reference = args.settings[0]
    rows = {}
    for name, intervals in timed.items():
        mean = statistics.mean(intervals)
        rows[name] = {"overrides": SETTINGS[name], "seconds_per_step": round(mean, 3),
                      "min": round(min(intervals), 3), "max": round(max(intervals), 3),
                      "timed_steps": len(intervals),
                      f"speedup_vs_{reference}": round(statistics.mean(timed[reference]) / mean, 3)}
    record = {"dataset": args.dataset, "variant": args.variant, "batch_size": args.batch_size,
              "group_size": "the variant's", "steps_per_run": args.steps, "warmup_steps": args.warmup,
              "repeats": args.repeats, "settings": rows, "machine": runs.machine(), "device": "cpu",
              "threads": os.environ.get("OMP_NUM_THREADS", "torch default"),
              "command": " ".join(["bench/step_speed.py"] + sys.argv[1:]), "commit": commit,
              "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - started, 1)}
    lines = [f"### {args.dataset} `{args.variant}`: seconds per training step (batch {args.batch_size})", "",
             f"| setting | overrides | s/step, mean (min–max) | {reference} ÷ setting |", "| --- | --- | --- | --- |"]
    for name, row in rows.items():
        overrides = ", ".join(f"{k}: {v}" for k, v in row["overrides"].items())
        spread = f"{row['seconds_per_step']:.2f} ({row['min']:.2f}–{row['max']:.2f})"
        lines.append(f"| {name} | {overrides} | {spread} | {row[f'speedup_vs_{reference}']:.2f}× |")
    stem = f"step_speed_{args.dataset}" + (f"_{args.tag}" if args.tag else "")
    runs.write_side_record(Path(args.out), stem, record, lines,
                           note=f"{args.repeats} runs per setting in alternating order, each in its own process, "
                                f"{args.steps - 1 - args.warmup} timed steps per run after {args.warmup} warm-up.")

if __name__ == "__main__":
    main()
