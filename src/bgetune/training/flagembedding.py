"""``train.backend: flagembedding``: FlagEmbedding's own trainer on the same data, same output folder.

The expanded base is saved to a work folder, data/train.jsonl is written in the plain FlagEmbedding format (query,
pos, neg), and ``python -m FlagEmbedding.finetune.embedder.encoder_only.base`` runs with our params mapped onto its
arguments (``torchrun --nproc_per_node N`` when ``train.devices`` > 1, with negatives shared across devices). Its
output has no modules.json, so it is re-saved as a sentence-transformers folder with the base's pooling,
normalisation and the query instruction as prompt — exactly what the bgetune backend writes.

Example::

    argv = flagembedding_command(params, "models/.fe_base", "data/.fe_train.jsonl", "models/.fe_out", "cls")
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

from bgetune.records import atomic_open, read_json, read_passages, read_train_examples, write_json

log = logging.getLogger("bgetune")
MODULE = "FlagEmbedding.finetune.embedder.encoder_only.base"


class FlagEmbeddingError(RuntimeError):
    """FlagEmbedding's trainer failed; the message carries the end of its output."""


def flagembedding_command(params, model_dir: str | Path, train_file: str | Path, output_dir: str | Path,
                          pooling: str, instruction: str = "", devices: int = 1) -> list[str]:
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
        "--query_max_len", str(params.model.max_seq_length),
        "--passage_max_len", str(params.model.max_seq_length),
        "--sentence_pooling_method", pooling,
        "--normalize_embeddings", "True",
        "--weight_decay", str(train.weight_decay),
        "--warmup_steps", str(train.warmup_ratio),   # transformers 5: a float below 1 is a ratio
        "--max_grad_norm", str(train.max_grad_norm),
        "--seed", str(params.seed),
        "--logging_steps", str(train.log_every),
        "--save_strategy", "no",
        "--report_to", "none",
        "--dataloader_drop_last", "False",
        "--knowledge_distillation", "False",
    ]
    if train.max_steps:
        argv += ["--max_steps", str(train.max_steps)]
    if instruction:
        argv += ["--query_instruction_for_retrieval", instruction, "--query_instruction_format", "{}{}"]
    if devices > 1:
        argv += ["--negatives_cross_device", "True"]
    if params.model.trust_remote_code:
        argv += ["--trust_remote_code", "True"]
    return argv


def run_flagembedding_train(params, data_dir: Path, models_dir: Path, metrics_dir: Path, runner=None) -> dict:
    """Run FlagEmbedding's trainer and save its result as models/finetuned. ``runner(argv, env)`` replaces the
    subprocess call in tests of the plumbing."""
    from bgetune.models import load_model, pooling_mode
    from bgetune.pipeline import _save_model, load_expanded_base

    if (params.train.method != "full" or params.train.loss != "infonce" or params.train.stage2.enabled
            or params.train.embedding_lr):
        raise ValueError("train.backend: flagembedding supports method: full, loss: infonce, no stage2 and no "
                         "train.embedding_lr; use the bgetune backend for LoRA, other losses, two-stage training and "
                         "a separate embedding learning rate")
    passages = read_passages(data_dir / "corpus.jsonl")
    base_card = read_json(models_dir / "base.json")
    model, vocab_report = load_expanded_base(params, base_card, [p.text for p in passages])
    pooling = pooling_mode(model)
    instruction = base_card["query_instruction"]
    work = models_dir / ".flagembedding"
    shutil.rmtree(work, ignore_errors=True)
    base_dir, out_dir, train_file = work / "base", work / "output", work / "train.jsonl"
    model.save(str(base_dir), safe_serialization=True)
    with atomic_open(train_file) as handle:
        for example in read_train_examples(data_dir / "train.jsonl"):
            handle.write(json.dumps({"query": example.query, "pos": example.pos, "neg": example.neg},
                                    ensure_ascii=False) + "\n")
    argv = flagembedding_command(params, base_dir, train_file, out_dir, pooling, instruction, params.train.devices)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", WANDB_DISABLED="true")
    log.info("train (flagembedding): %s", " ".join(argv))
    started = time.perf_counter()
    (runner or _run)(argv, env)
    trained = load_model(str(out_dir), params.model.max_seq_length, pooling, params.model.trust_remote_code)
    _save_model(trained, models_dir / "finetuned", instruction)
    shutil.rmtree(work, ignore_errors=True)
    summary = {"backend": "flagembedding", "command": argv[argv.index(MODULE):], "pooling": pooling,
               "seconds": round(time.perf_counter() - started, 2), "vocab": vocab_report,
               "query_instruction": instruction, "train": {"steps": params.train.max_steps or None,
                                                           "seconds": round(time.perf_counter() - started, 2),
                                                           "first_loss": None, "final_loss_mean": None}}
    write_json(metrics_dir / "train.json", summary)
    return summary


def _run(argv: list[str], env: dict) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise FlagEmbeddingError(f"FlagEmbedding's trainer exited with {result.returncode}:\n"
                                 f"{(result.stdout + result.stderr)[-4000:]}")
