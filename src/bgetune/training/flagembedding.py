"""``train.backend: flagembedding``: FlagEmbedding's own trainer on the same data, same output folder.

data/train.jsonl is written in the plain FlagEmbedding format (query, pos, neg), and FlagEmbedding's encoder-only
trainer (through ``bgetune.training.flagembedding_main``, which also saves the Trainer's state) runs on models/base
(the expanded base: a transformers folder at its root) with our params mapped onto its arguments — torchrun over
``train.devices`` GPUs with negatives shared across devices, bf16/fp16 as ``train.precision`` resolves. Its output
has no modules.json (sentence-transformers would mean-pool a CLS model), so it is re-saved as a
sentence-transformers folder with the base's pooling, normalisation, lengths and the query instruction as prompt —
exactly what the default backend writes. The Trainer's log history (trainer_state.json) gives results/train.json its
steps, loss and learning-rate curves, as the default backend's does.

Example::

    argv = flagembedding_command(params, "models/base", "data/.fe_train.jsonl", "models/.fe_out", "cls")
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bgetune.errors import BgetuneError
from bgetune.records import atomic_open, read_train_examples, write_json

log = logging.getLogger("bgetune")
# FlagEmbedding's ``FlagEmbedding.finetune.embedder.encoder_only.base`` with the Trainer's state saved at the end
MODULE = "bgetune.training.flagembedding_main"


class FlagEmbeddingError(BgetuneError, RuntimeError):
    """FlagEmbedding's trainer failed; the message carries the end of its output."""


def flagembedding_command(params, model_dir: str | Path, train_file: str | Path, output_dir: str | Path,
                          pooling: str, instruction: str = "", devices: int = 1, precision: str = "fp32") -> list[str]:
    train = params.train
    launcher = ([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={devices}", "-m", MODULE]
                if devices > 1 else [sys.executable, "-m", MODULE])
    argv = launcher + [
        "--model_name_or_path", str(model_dir),
        "--train_data", str(train_file),
        "--output_dir", str(output_dir),
        "--learning_rate", str(train.lr),
        "--num_train_epochs", str(train.epochs),
        "--per_device_train_batch_size", str(train.batch_size),
        "--train_group_size", str(train.train_group_size),
        "--temperature", str(train.temperature),
        "--query_max_len", str(params.model.query_max_length),
        "--passage_max_len", str(params.model.passage_max_length),
        "--sentence_pooling_method", pooling,
        "--normalize_embeddings", "True",
        "--weight_decay", str(train.weight_decay),
        "--warmup_steps", str(train.warmup_ratio),   # transformers 5: a float below 1 is a ratio
        "--max_grad_norm", str(train.max_grad_norm),
        "--gradient_accumulation_steps", str(train.gradient_accumulation_steps),
        "--seed", str(params.seed_of("train")),
        "--logging_steps", str(train.log_every),
        "--save_strategy", "no",
        "--report_to", "none",
        "--dataloader_drop_last", "False",
        "--knowledge_distillation", "False",
    ]
    if precision == "bf16":
        argv += ["--bf16", "True"]
    elif precision == "fp16":
        argv += ["--fp16", "True"]
    if train.gradient_checkpointing:
        argv += ["--gradient_checkpointing", "True"]
    if train.max_steps:
        argv += ["--max_steps", str(train.max_steps)]
    if instruction:
        argv += ["--query_instruction_for_retrieval", instruction, "--query_instruction_format", "{}{}"]
    if devices > 1:
        argv += ["--negatives_cross_device", "True"]
    if params.model.trust_remote_code:
        argv += ["--trust_remote_code", "True"]
    return argv


def flagembedding_refusals(params) -> list[str]:
    """The set params FlagEmbedding's trainer has no option for, each as ``key: value (what it takes)``."""
    train = params.train
    checks = [
        ("train.method", train.method, train.method == "full", "full"),
        ("train.loss", train.loss, train.loss == "infonce", "infonce"),
        ("train.stage2.enabled", train.stage2.enabled, not train.stage2.enabled, "false"),
        ("train.embedding_lr", train.embedding_lr, not train.embedding_lr, "0"),
        ("mining.rounds", params.mining.rounds, params.mining.rounds == 1, "1"),
        ("train.noise_weight", train.noise_weight, not train.noise_weight, "0"),
        ("train.distill_weight", train.distill_weight, not train.distill_weight, "0"),
        ("train.attention_dropout", train.attention_dropout, train.attention_dropout is None, "null"),
        ("train.directions", train.directions, train.directions == ["query_to_doc"], "[query_to_doc]"),
        # on by default on the sentence_transformers backend (its InfoNCE term), so this is the one most runs meet
        ("train.hardness_mode", train.hardness_mode, train.hardness_mode == "off", "off"),
    ]
    return [f"{key}: {value} (it takes {accepted})" for key, value, ok, accepted in checks if not ok]


def run_flagembedding(params, root: Path, runner=None) -> dict:
    """Run FlagEmbedding's trainer and save its result as models/finetuned (with results/train.json and curves).
    ``runner(argv, env)`` replaces the subprocess call in tests of the plumbing."""
    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.modelcard import card_facts, finetuned_card
    from bgetune.models import instructions, load_model, pooling_mode, save_model
    from bgetune.outputs import StageOutputs
    from bgetune.records import read_passages
    from bgetune.steps.train import OUTS

    train = params.train
    refused = flagembedding_refusals(params)
    if refused:
        raise FlagEmbeddingError(f"train.backend: flagembedding cannot take {'; '.join(refused)}: change them or use "
                                 "the sentence_transformers backend (FlagEmbedding's trainer has no such options)")
    started = time.perf_counter()
    device = resolve_device(params.model.device)
    precision = resolve_precision(train.precision, device)
    base_dir = root / "models/base"
    base = load_model(str(base_dir), "cpu", params.model.query_max_length, params.model.passage_max_length)
    pooling = pooling_mode(base)
    train_instruction, eval_instruction = instructions(params.model, params.model.base)
    work = root / ".bgetune" / "flagembedding"
    shutil.rmtree(work, ignore_errors=True)
    out_dir, train_file = work / "output", work / "train.jsonl"
    examples = read_train_examples(root / "data/train.jsonl")
    with atomic_open(train_file) as handle:
        for example in examples:
            handle.write(json.dumps({"query": example.query, "pos": example.pos, "neg": example.neg},
                                    ensure_ascii=False) + "\n")
    argv = flagembedding_command(params, base_dir, train_file, out_dir, pooling, train_instruction, train.devices,
                                 precision)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")
    log.info("train (flagembedding): %s", " ".join(argv))
    (runner or _run)(argv, env)
    trained = load_model(str(out_dir), device, params.model.query_max_length, params.model.passage_max_length,
                         pooling, params.model.trust_remote_code, key="FlagEmbedding's output")
    stage1 = trainer_summary(out_dir / "trainer_state.json", train.log_every)
    log.info("train (flagembedding): %s steps, loss %s → %s (first → last logging window)", stage1["steps"],
             stage1["first_loss"], stage1["final_loss"])
    seconds = round(time.perf_counter() - started, 2)
    summary = {"backend": "flagembedding", "command": argv[argv.index(MODULE):], "pooling": pooling,
               "stage1": stage1,
               "train_instruction": train_instruction, "eval_instruction": eval_instruction,
               "runtime": runtime(device, precision, train.devices), "seconds": seconds}
    passages = read_passages(root / "data/corpus.jsonl")
    facts = card_facts(params, trained, passages, examples, 0, eval_instruction, device, precision)
    with StageOutputs("train", OUTS, root) as out:
        save_model(trained, out.path("models/finetuned"), eval_instruction, finetuned_card(params, summary, facts))
        write_json(out.path("results/train.json"), summary)
        from bgetune.training.curves import write_curves

        write_curves(out.path("results/train_log"), [("stage1", summary["stage1"])])
    shutil.rmtree(work, ignore_errors=True)
    return summary


def trainer_summary(state_file: Path, log_every: int) -> dict:
    """results/train.json's stage1 from FlagEmbedding's Trainer state: steps, loss and lr per logging window,
    in the default backend's format (``bgetune.training.trainer.summarize``; no val: its trainer has none)."""
    from bgetune.training.trainer import summarize

    try:
        state = json.loads(Path(state_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FlagEmbeddingError(f"FlagEmbedding's trainer left no readable {Path(state_file).name}: {err}") from None
    summary = summarize(state.get("log_history", []), "eval_val_ndcg@10", log_every, state.get("max_steps", 0))
    summary["steps"] = state.get("global_step", summary["steps"])
    return summary


def _run(argv: list[str], env: dict, echo=None) -> None:
    """Run FlagEmbedding's trainer, passing its output (progress bar, loss lines) through to ``echo`` (stderr) as
    it comes, so a long run is not silent; on failure, raise with the last line of its output."""
    echo = echo or sys.stderr.buffer
    tail = b""
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        while chunk := process.stdout.read1(65536):
            echo.write(chunk)
            echo.flush()
            tail = (tail + chunk)[-65536:]
    if process.returncode != 0:
        lines = [line.strip() for line in tail.decode("utf-8", "replace").replace("\r", "\n").splitlines()]
        last = next((line for line in reversed(lines) if line), "(no output)")
        raise FlagEmbeddingError(f"FlagEmbedding's trainer exited with {process.returncode}: {last[:500]}")
