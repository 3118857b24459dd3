"""Fine-tuning on sentence-transformers' Trainer (Hugging Face Trainer over accelerate).

The engine brings device placement, bf16/fp16 with loss scaling, gradient accumulation and checkpointing,
torchrun/DeepSpeed/FSDP, checkpoints with optimizer, scheduler and RNG state, resume, keep-best and early stopping.
bgetune plugs in what it lacks — the duplicate-free id-aware batch schedule and the group collator
(``training/data.py``), the id-masked InfoNCE and its terms (``training/losses/``), the val evaluators
(``training/evaluators.py``) — and adds around it:

- resume that is safe to rely on: checkpoints from other params or data (a fingerprint) are discarded, and a
  checkpoint half-written by a kill (no complete ``trainer_state.json``) is removed before the Trainer looks for
  the latest one, so a killed run, re-run, ends with the weights of an uninterrupted run;
- one-line errors for what users hit most: out of memory (the knobs to turn), a full disk while checkpointing, a
  non-finite loss;
- a summary and curves built from the Trainer's own log history, so they agree with each other, also after a
  resume.

Example::

    summary = fit(model, examples, params.train, seed=42, instruction="", checkpoint_dir="models/checkpoints/train",
                  fingerprint="...", device="cuda", precision="bf16")
"""
from __future__ import annotations

import errno
import logging
from collections import Counter
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

from bgetune.device import trainer_precision_args
from bgetune.errors import BgetuneError
from bgetune.modelcard import describe_loss
from bgetune.training.callbacks import LogTheLastStep
from bgetune.training.checkpoints import last_complete_checkpoint, prepare_checkpoints
from bgetune.training.data import GroupCollator, ScheduleBatchSampler, groups_short_of_negatives, schedule_dataset
from bgetune.training.evaluators import metric_key
from bgetune.training.losses import NonFiniteLoss, build_loss

log = logging.getLogger("bgetune")
OOM_HINT = ("out of memory while training: lower train.batch_size or train.train_group_size, shorten "
            "model.passage_max_length, or turn on train.gradient_checkpointing, train.loss: cached_infonce "
            "(with a small train.mini_batch_size) or train.auto_batch_size")


class TrainingError(BgetuneError, RuntimeError):
    """Training cannot go on; the message says why and what to change."""


def checkpointing_args(enabled: bool) -> dict:
    """Activation (gradient) checkpointing under the name this transformers version uses."""
    if not enabled:
        return {}
    import dataclasses

    names = {f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments)}
    return {"activation_checkpointing": True} if "activation_checkpointing" in names else \
        {"gradient_checkpointing": True}


class BgetuneTrainer(SentenceTransformerTrainer):
    """sentence-transformers' Trainer, with our model card instead of its own, automatic batch sizes that reach the
    data loader, and checkpoints of a LoRA model reloaded into the model being trained.

    Why: a LoRA checkpoint holds only the adapter, and sentence-transformers rebuilds the model from the base named
    in it — the original base, whose vocabulary lacks the rows that vocabulary expansion added, so the adapter's
    new-token rows cannot load. Full-model checkpoints take sentence-transformers' own path."""

    def add_model_card_callback(self, default_args_dict) -> None:
        """No sentence-transformers model card: ours is written from the pipeline's facts (bgetune.modelcard); the
        Trainer's would describe a dataset of example indices (and computes widget examples from it)."""

    def get_train_dataloader(self):
        """As sentence-transformers builds it, but at the Trainer's current batch size: with auto_find_batch_size
        the Trainer halves ``_train_batch_size`` after an out-of-memory error, which sentence-transformers' version
        (reading ``args.train_batch_size``) would never see."""
        self.accelerator.even_batches = False
        self._train_dataloader = self.accelerator.prepare(
            self._build_dataloader(self.train_dataset, self._train_batch_size, dataset_kind="train"))
        return self._train_dataloader

    def _load_from_checkpoint(self, checkpoint_path: str, model=None) -> None:
        adapter = Path(checkpoint_path) / "adapter_model.safetensors"
        if not adapter.exists():
            return super()._load_from_checkpoint(checkpoint_path)
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model[0].auto_model, load_file(str(adapter)))


def fit(model, examples, params, seed: int, instruction: str = "", checkpoint_dir: str | Path | None = None,
        fingerprint: str = "", device: str = "cpu", precision: str = "fp32", evaluator=None,
        noise_texts: list[str] | None = None, progress: bool = True, callbacks=(), processes: int = 1,
        stage: str = "train", groups: list[str] | None = None) -> dict:
    """Train ``model`` in place on ``examples`` with the train-section ``params``; returns the run's summary.

    ``checkpoint_dir`` None trains without checkpoints (tests, benchmarks); with one, an interrupted call with the
    same ``fingerprint`` resumes from the last complete checkpoint. ``groups`` (one per example): each batch is
    drawn from one group (``train.batch_by``), unless there is only one."""
    if not examples:
        raise TrainingError("no training examples: check data/train.jsonl and results/qa_gen.json")
    output_dir = Path(checkpoint_dir) if checkpoint_dir else None
    resume = None
    if output_dir:
        # One process tidies the checkpoints; the others wait, then read the same folder.
        if _rank() == 0:
            resume = prepare_checkpoints(output_dir, fingerprint)
        _barrier()
        if _rank() != 0:
            resume = last_complete_checkpoint(output_dir)
    selecting = evaluator is not None and params.eval_every > 0
    schedule_free = params.optimizer == "schedule_free_adamw"
    keep_best = selecting and params.keep_best
    metric, greater = metric_key(params.select_by)
    if params.checkpoint_every and output_dir:
        save = {"save_strategy": "steps", "save_steps": params.checkpoint_every}
    elif keep_best and output_dir:
        save = {"save_strategy": "best"}
    else:
        save = {"save_strategy": "no"}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir or Path(".bgetune") / "trainer-scratch"),
        num_train_epochs=1,                  # all epochs are one pass over the schedule (training/data.py)
        max_steps=params.max_steps or -1,
        per_device_train_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        auto_find_batch_size=params.auto_batch_size,
        learning_rate=params.lr,
        learning_rate_mapping={r"word_embeddings": params.embedding_lr} if params.embedding_lr else {},
        weight_decay=params.weight_decay,
        warmup_steps=float(params.warmup_ratio),   # transformers 5: a float below 1 is a share of the steps
        # Schedule-Free AdamW replaces the decay by its average: the Trainer's scheduler only warms up. (The
        # Trainer also hands the optimizer warmup_steps, as this ratio, which it reads as under one step: no
        # second warm-up.)
        lr_scheduler_type="constant_with_warmup" if schedule_free else "linear",
        optim="schedule_free_adamw" if schedule_free else "adamw_torch",
        max_grad_norm=params.max_grad_norm,
        logging_steps=params.log_every,
        eval_strategy="steps" if selecting else "no",
        eval_steps=params.eval_every if selecting else None,
        load_best_model_at_end=keep_best,
        metric_for_best_model=metric if selecting else None,
        greater_is_better=greater if selecting else None,
        save_total_limit=2 if save["save_strategy"] != "no" else None,
        seed=seed,
        data_seed=seed,
        batch_sampler=ScheduleBatchSampler,
        remove_unused_columns=False,
        dataloader_num_workers=params.dataloader_workers,
        use_cpu=device == "cpu",
        ddp_backend="gloo" if device == "cpu" and processes > 1 else None,
        report_to="none",
        disable_tqdm=not progress,
        ddp_find_unused_parameters=False,
        **save,
        **trainer_precision_args(precision),
        **checkpointing_args(params.gradient_checkpointing),
    )
    freeze_unused_pooler(model)
    if params.attention_dropout is not None:
        changed = set_attention_dropout(model, params.attention_dropout)
        log.info("%s: attention dropout %.2f in %d layers (train.attention_dropout)", stage, params.attention_dropout,
                 changed)
    collator = GroupCollator(preprocess_fn=model.preprocess, examples=examples, group_size=params.train_group_size,
                             seed=seed, instruction=instruction,
                             noise_texts=list(noise_texts or []) if params.noise_weight > 0 else [])
    loss = build_loss(model, params, processes)
    log.info("%s: loss %s", stage, describe_loss(params))
    if params.loss != "cached_infonce":   # GradCache embeds in its own mini-batches
        chunk_size = loss.length_chunk_size
        log.info("%s: each column embedded %s on %s (train.length_chunk_size: %s)", stage,
                 f"in length-sorted chunks of {chunk_size} texts" if chunk_size else "in one pass", device,
                 params.length_chunk_size)
    all_callbacks = [LogTheLastStep(), *callbacks]
    if selecting and params.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        all_callbacks.append(EarlyStoppingCallback(early_stopping_patience=params.early_stopping_patience))
    group_sizes = Counter(groups).most_common() if groups is not None else []
    if groups is not None and len(group_sizes) < 2:
        log.info("%s: train.batch_by domain, but the examples hold one domain (%s): batches as with none", stage,
                 group_sizes[0][0] if group_sizes and group_sizes[0][0] else "none named")
        groups = None
    elif groups is not None:
        log.info("%s: each batch from one domain, %d domains: %s", stage, len(group_sizes),
                 ", ".join(f"{group or '(none)'} {size}" for group, size in group_sizes))
    trainer = BgetuneTrainer(model=model, args=args, train_dataset=schedule_dataset(examples, params.epochs, groups),
                             loss=loss, evaluator=evaluator if selecting else None, data_collator=collator,
                             callbacks=all_callbacks)
    short = groups_short_of_negatives(examples, params.train_group_size)
    if short:
        log.warning("%s: %d of %d queries have fewer than train_group_size - 1 = %d hard negatives; they train with "
                    "the ones they have (no repeats) plus in-batch negatives", stage, short, len(examples),
                    params.train_group_size - 1)
    if resume:
        log.info("%s: resuming from %s", stage, resume)
    try:
        trainer.train(resume_from_checkpoint=resume)
    except torch.OutOfMemoryError:
        raise TrainingError(OOM_HINT) from None
    except NonFiniteLoss as err:
        raise TrainingError(f"{stage}: {err}") from None
    except (OSError, RuntimeError) as err:
        if _is_disk_full(err):
            if output_dir:
                prepare_checkpoints(output_dir, fingerprint)   # drop the half-written checkpoint
            raise TrainingError(f"no space left while writing a checkpoint into {output_dir} ({_short(err)}); free "
                                "disk space or lower how often checkpoints are written (train.checkpoint_every)") \
                from None
        if "out of memory" in str(err).lower():
            raise TrainingError(OOM_HINT) from None
        raise
    restored_best = keep_best and trainer.state.best_model_checkpoint is not None
    if schedule_free and not restored_best:
        # The Trainer leaves Schedule-Free's training point in the model; its result is the running average,
        # which the optimizer swaps in on eval() (as the Trainer does before each evaluation). Best val weights
        # restored from a checkpoint were saved right after an evaluation: already the average.
        trainer.optimizer.eval()
    summary = summarize(trainer.state.log_history, metric, params.log_every, trainer.state.max_steps)
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise TrainingError(f"{stage}: the weights became non-finite (a loss overflow): lower train.lr "
                            f"({params.lr}), raise train.temperature ({params.temperature}) or use train.precision: "
                            "bf16/fp32 instead of fp16")
    batch_sampler = trainer.get_train_dataloader().batch_sampler
    inner = getattr(batch_sampler, "batch_sampler", batch_sampler)
    summary.update({
        "examples": len(examples),
        "epochs": params.epochs,
        "processes": processes,
        "batch_size_per_device": trainer._train_batch_size,
        "global_batch_size": trainer._train_batch_size * processes * params.gradient_accumulation_steps,
        "groups_short_of_negatives": short,
        "examples_left_out_for_even_shards": getattr(inner, "left_out", 0),
        "resumed_from": resume,
        "loss": params.loss,
        "optimizer": params.optimizer,
        "selected_by": params.select_by if selecting else None,
    })
    if groups is not None:   # train.batch_by: the examples per batch group (each batch drawn from one)
        summary["batch_groups"] = dict(group_sizes)
    if restored_best:
        summary["validation"]["restored_best"] = True
    return summary


def freeze_unused_pooler(model) -> None:
    """BERT-style models compute a pooler output that sentence-transformers' pooling never reads: its weights get
    no gradient, which DistributedDataParallel reports as an error. Freezing them changes nothing else (AdamW skips
    parameters without a gradient)."""
    for name, parameter in model[0].auto_model.named_parameters():
        if ".pooler." in f".{name}":
            parameter.requires_grad_(False)


def set_attention_dropout(model, probability: float) -> int:
    """Set the dropout on attention probabilities of every self-attention layer (BERT, XLM-RoBERTa: the BGE
    models) for training; returns how many layers changed. The saved config keeps the model's own value: dropout
    is off at inference anyway.

    Why it is a knob: PyTorch's CPU attention has no fused kernel with dropout, so with the default 0.1 it falls
    back to the unfused path, about 4x slower per attention call (fused GPU kernels have dropout built in)."""
    layers = 0
    for name, module in model[0].auto_model.named_modules():
        if isinstance(module, torch.nn.Dropout) and name.endswith("attention.self.dropout"):
            module.p = probability
            layers += 1
    if not layers:
        raise TrainingError(f"train.attention_dropout: {type(model[0].auto_model).__name__} has no BERT-style "
                            "self-attention dropout to set; leave it null for this model")
    return layers


def summarize(history: list[dict], metric: str, log_every: int, planned_steps: int) -> dict:
    """Loss per logging window (the Trainer's mean over the window), learning rate and val metrics per step, from
    the Trainer's log history — which a resumed run restores whole."""
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evaluations = []
    for entry in history:
        values = {k[len("eval_val_"):].replace("cosine_", ""): v for k, v in entry.items()
                  if k.startswith("eval_val_")}
        if values:
            evaluations.append({"step": entry["step"], **values})
    steps = max((h.get("step", 0) for h in history), default=0)
    validation = None
    if evaluations:
        key = metric[len("eval_val_"):].replace("cosine_", "")
        chosen = (min if key.startswith("noise") else max)(evaluations, key=lambda e: (e[key], -e["step"]))
        validation = {"metric": key, "best": round(chosen[key], 6), "best_step": chosen["step"],
                      "restored_best": False, "history": evaluations,
                      "stopped_early": steps < planned_steps}
    return {"steps": steps, "planned_steps": planned_steps, "loss_window_steps": log_every,
            "first_loss": round(losses[0][1], 5) if losses else None,
            "final_loss": round(losses[-1][1], 5) if losses else None,
            "loss_curve": [{"step": s, "loss": round(v, 5)} for s, v in losses],
            "lr_curve": [{"step": h["step"], "learning_rate": h["learning_rate"]} for h in history
                         if "learning_rate" in h and "step" in h],
            "validation": validation}


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0"))


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _is_disk_full(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    text = str(err).lower()
    return any(s in text for s in ("no space left", "file too large", "iostream error", "disk quota",
                                   "file write failed", "unexpected pos"))


def _short(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
