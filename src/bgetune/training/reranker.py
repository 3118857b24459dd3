"""Training a reranker: a cross-encoder fine-tuned with sentence-transformers' ``CrossEncoderTrainer`` (HF Trainer:
devices, mixed precision, resume) on the run's own data/train.jsonl groups: the positive against the mined hard
negatives and in-batch random ones, one softmax over each group of raw logits (FlagEmbedding's reranker loss; the
library's cross-encoder ``MultipleNegativesRankingLoss`` with ``activation_fn=None`` and scale 1). bgetune.reranking
scores and blends with it.

Example::

    groups, left_out = training_groups(read_train_examples("data/train.jsonl"), hard_negatives=3, seed=42)
    init = init_folder("models/finetuned", "models/checkpoints/rerank/init")
    summary = train_reranker(init, "models/reranker", groups, params.rerank, seed=42)
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

from bgetune.reranking import RerankError

log = logging.getLogger("bgetune")
# What a cross-encoder started from a bi-encoder folder needs: its transformer and tokenizer, not the
# sentence-transformers modules (with modules.json, CrossEncoder would read a bi-encoder).
TRANSFORMER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json", "vocab.txt", "sentencepiece.bpe.model")


def training_groups(examples, hard_negatives: int, seed: int) -> tuple[list[dict], int]:
    """One reranker group per training question: its query, first positive and first ``hard_negatives`` mined
    negatives, in a seeded order. Questions with fewer negatives are left out (the trainer needs one column count)
    and counted; returns (groups, how many were left out)."""
    usable = [e for e in examples if e.pos and len(e.neg) >= hard_negatives]
    groups = [{"query": e.query, "positive": e.pos[0], **{f"negative_{i + 1}": e.neg[i] for i in range(hard_negatives)}}
              for e in usable]
    random.Random(seed).shuffle(groups)
    return groups, len(examples) - len(usable)


def init_folder(model_dir: str | Path, out_dir: str | Path) -> Path:
    """A folder holding only a bi-encoder's transformer and tokenizer (links to its files), so that CrossEncoder
    reads it as a plain encoder under a new one-logit head rather than as a sentence-transformers model."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if not (model_dir / "config.json").exists():
        raise RerankError(f"{model_dir}: no config.json, so no transformer to start the reranker from")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in TRANSFORMER_FILES:
        if (model_dir / name).exists() and not (out_dir / name).exists():
            (out_dir / name).symlink_to((model_dir / name).resolve())
    return out_dir


def train_reranker(init: str | Path, out_dir: str | Path, groups: list[dict], settings, seed: int,
                   device: str = "cpu", precision: str = "fp32", checkpoint_dir: str | Path | None = None,
                   fingerprint: str = "", trust_remote_code: bool = False, progress: bool = True,
                   callbacks=()) -> dict:
    """Fine-tune a cross-encoder from ``init`` (a folder from ``init_folder`` or a cross-encoder reference) on
    ``groups`` with CrossEncoderTrainer and save it to ``out_dir``; ``settings`` is the rerank params section.
    With ``checkpoint_dir``, a killed call with the same ``fingerprint`` resumes from its last whole checkpoint.
    ``callbacks``: Trainer callbacks (progress, tests). Returns steps, seconds and the first and last logged losses."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (CrossEncoder, CrossEncoderTrainer,
                                                     CrossEncoderTrainingArguments)
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    from bgetune.device import trainer_precision_args
    from bgetune.training.checkpoints import prepare_checkpoints

    if not groups:
        raise RerankError("no reranker training groups: data/train.jsonl has no question with "
                          f"rerank.hard_negatives ({settings.hard_negatives}) mined negatives")
    from transformers import set_seed

    set_seed(seed)   # the new scoring head is drawn when the model is built, before the Trainer seeds anything
    model = CrossEncoder(str(init), num_labels=1, max_length=settings.max_length, device=device,
                         trust_remote_code=trust_remote_code)
    # Raw logits under a plain softmax (FlagEmbedding's reranker loss): the library's default squashes each logit
    # through a sigmoid and scales by 10, which bounds how far apart a group's scores can go.
    loss = MultipleNegativesRankingLoss(model, num_negatives=settings.random_negatives, scale=1.0,
                                        activation_fn=None)
    resume = prepare_checkpoints(Path(checkpoint_dir), fingerprint) if checkpoint_dir else None
    saving = {"save_strategy": "steps", "save_steps": settings.checkpoint_every, "save_total_limit": 2} \
        if checkpoint_dir and settings.checkpoint_every else {"save_strategy": "no"}
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoint_dir or Path(".bgetune") / "reranker-scratch"), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size, learning_rate=settings.lr, warmup_steps=0.1, seed=seed,
        data_seed=seed, logging_steps=5, report_to="none", disable_tqdm=not progress, use_cpu=device == "cpu",
        **saving, **trainer_precision_args(precision))
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=Dataset.from_list(groups), loss=loss,
                                  callbacks=list(callbacks))
    if resume:
        log.info("rerank: resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    model.save_pretrained(str(out_dir))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"steps": trainer.state.global_step, "seconds": round(result.metrics["train_runtime"], 1),
            "first_loss": losses[0] if losses else None, "final_loss": losses[-1] if losses else None}
