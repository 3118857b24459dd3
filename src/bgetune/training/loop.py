"""The training loop: contrastive fine-tuning of a SentenceTransformer, readable top to bottom.

Every ``checkpoint_every`` steps the loop saves weights (safetensors), optimizer, scheduler and RNG state; a later
call with the same ``fingerprint`` resumes from there and ends with the same weights as an uninterrupted run,
because each batch's sampling is seeded by (seed, epoch, batch) and the torch RNG state travels in the checkpoint.

Example::

    result = train(model, examples, params.train, seed=42, instruction="", checkpoint_dir="models/checkpoints/train")
    model.save("models/finetuned")
"""
from __future__ import annotations

import json
import logging
import random
import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from bgetune.records import TrainExample
from bgetune.training.batching import no_duplicate_batches, sample_group
from bgetune.training.losses import BatchLoss

log = logging.getLogger(__name__)
EASY_LOSS, EASY_STEPS = 1e-3, 20


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, an empty training set); the message says where and why."""


def train(model, examples: list[TrainExample], params, seed: int, instruction: str = "",
          checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0, fingerprint: str = "",
          log_metrics: Callable[[int, dict], None] | None = None,
          on_step: Callable[[int], None] | None = None, progress: bool = True,
          evaluate: Callable[[object], dict] | None = None, noise_texts: list[str] | None = None) -> dict:
    """Train ``model`` in place. ``evaluate(model) -> {"ndcg@10": …}`` runs every ``params.eval_every`` steps: the
    best state is kept (``params.keep_best``) and training stops after ``params.early_stopping_patience``
    evaluations without improvement."""
    if not examples:
        raise TrainingError("no training examples: check data/train.jsonl and the qa-gen summary")
    from bgetune.training.distributed import DistributedContext

    torch.manual_seed(seed)
    context = DistributedContext.from_environment()
    if context.enabled and torch.cuda.is_available():
        model.to(f"cuda:{context.local_rank}")
    loss_fn = BatchLoss(model, params.loss, params, instruction, noise_texts, context)
    # train.batch_size is per process: a global batch holds batch_size queries for every process.
    global_size = params.batch_size * context.world_size
    epoch_batches = [no_duplicate_batches(examples, global_size, seed, e) for e in range(params.epochs)]
    uneven = sum(len(b) - len(context.even_batch(b)) for batches in epoch_batches for b in batches)
    if uneven:
        log.warning("%d example-epochs left out so that every process gets the same number of queries per batch",
                    uneven)
    total_steps = sum(len(b) for b in epoch_batches)
    if params.max_steps:
        total_steps = min(total_steps, params.max_steps)
    optimizer = torch.optim.AdamW(parameter_groups(model, params), lr=params.lr)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(params.warmup_ratio * total_steps), total_steps)

    step = 0
    checkpoint = Path(checkpoint_dir) if checkpoint_dir else None
    if checkpoint is not None:
        step = _load_checkpoint(checkpoint, model, optimizer, scheduler, fingerprint)

    resumed_from = step
    validation = _Validation(params, checkpoint)
    model.train()
    started, triplets, easy_run, losses = time.perf_counter(), 0, 0, []
    stopped_early = False
    bar = _progress(total_steps, step, progress and context.is_main)
    if not context.is_main:
        log_metrics = None   # one process writes the curves
    global_batch = 0
    for epoch, batches in enumerate(epoch_batches):
        for b, batch in enumerate(batches):
            global_batch += 1
            if global_batch <= step:
                continue  # done before the interruption; sampling below depends only on (seed, epoch, b)
            if step >= total_steps or stopped_early:
                break
            rng = random.Random(f"{seed}:{epoch}:{b}")
            groups = [sample_group(examples[i], params.train_group_size, rng) for i in context.even_batch(batch)]
            if not groups:
                continue
            loss = loss_fn(groups, rng)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"non-finite loss ({loss.item()}) at step {step + 1}: likely causes are fp16 overflow, a learning "
                    f"rate too high (train.lr={params.lr}) or a temperature too low (train.temperature="
                    f"{params.temperature})")
            loss.backward()
            context.average_gradients(model)
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            triplets += sum(2 + len(g.negatives) for g in groups)   # texts encoded: query, positive, negatives
            value = context.mean(loss.item())
            losses.append(value)
            easy_run = easy_run + 1 if value < EASY_LOSS else 0
            if easy_run == EASY_STEPS:
                log.warning("loss below %.0e for %d steps at step %d: the negatives are too easy (mine harder "
                            "negatives, lower mining.dense.rank_min, or raise train.temperature)",
                            EASY_LOSS, EASY_STEPS, step)
            if log_metrics and (step % params.log_every == 0 or step == total_steps):
                log_metrics(step, {"loss": value, "lr": scheduler.get_last_lr()[0], "epoch": epoch})
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}")
            if evaluate is not None and params.eval_every and (step % params.eval_every == 0 or step == total_steps):
                model.eval()
                with torch.no_grad():
                    values = evaluate(model)
                model.train()
                improved = validation.record(step, values, model)
                if log_metrics:
                    log_metrics(step, {f"val_{k}": v for k, v in values.items()})
                log.info("step %d: val ndcg@10 %.4f%s", step, values["ndcg@10"], " (best)" if improved else "")
                if validation.should_stop():
                    log.info("early stopping at step %d: no val improvement in %d evaluations (best %.4f at "
                             "step %d)", step, params.early_stopping_patience, validation.best, validation.best_step)
                    stopped_early = True
            if (checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step < total_steps
                    and context.is_main):
                _save_checkpoint(checkpoint, model, optimizer, scheduler, step, fingerprint)
                validation.save()
            if on_step:
                on_step(step)
    if bar:
        bar.close()
    model.eval()
    restored = validation.restore_best(model) if params.keep_best else False
    seconds = time.perf_counter() - started
    tail = losses[-max(1, len(losses) // 5):] if losses else []
    if loss_fn.negatives_left_out:
        log.warning("cached_infonce: %d hard negatives left out (a batch uses as many per query as its query with "
                    "the fewest has); infonce takes every one", loss_fn.negatives_left_out)
    return {
        "steps": step,
        "resumed_from_step": resumed_from,
        "examples": len(examples),
        "epochs": params.epochs,
        "first_loss": round(losses[0], 5) if losses else None,
        "final_loss_mean": round(sum(tail) / len(tail), 5) if tail else None,
        "seconds": round(seconds, 2),
        "texts_per_second": round(triplets / seconds, 2) if seconds > 0 else None,
        "loss": params.loss,
        "processes": context.world_size,
        "examples_left_out_for_even_shards": uneven,
        "negatives_left_out_by_cached_loss": loss_fn.negatives_left_out,
        "validation": validation.summary(restored, stopped_early) if evaluate is not None and params.eval_every
        else None,
    }


class _Validation:
    """Best val NDCG@10 so far, its weights (CPU copy, saved beside checkpoints for resume), and patience."""

    def __init__(self, params, checkpoint: Path | None):
        self.patience = params.early_stopping_patience
        self.best, self.best_step, self.best_state, self.since_best = float("-inf"), 0, None, 0
        self.history: list[dict] = []
        self.directory = checkpoint.with_name(checkpoint.name + "-best") if checkpoint is not None else None
        if self.directory is not None and (self.directory / "best.json").exists():
            from safetensors.torch import load_file

            saved = json.loads((self.directory / "best.json").read_text())
            self.best, self.best_step, self.since_best = saved["best"], saved["best_step"], saved["since_best"]
            self.history = saved["history"]
            self.best_state = load_file(str(self.directory / "best.safetensors"))

    def record(self, step: int, values: dict, model) -> bool:
        score = values["ndcg@10"]
        self.history.append({"step": step, **values})
        if score > self.best:
            self.best, self.best_step, self.since_best = score, step, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            return True
        self.since_best += 1
        return False

    def should_stop(self) -> bool:
        return bool(self.patience) and self.since_best >= self.patience

    def save(self) -> None:
        if self.directory is None or self.best_state is None:
            return
        from safetensors.torch import save_file

        self.directory.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.best_state.items()}, str(self.directory / "best.safetensors"))
        (self.directory / "best.json").write_text(json.dumps({"best": self.best, "best_step": self.best_step,
                                                              "since_best": self.since_best,
                                                              "history": self.history}))

    def restore_best(self, model) -> bool:
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def summary(self, restored: bool, stopped_early: bool) -> dict:
        return {"best_ndcg@10": round(self.best, 6) if self.history else None, "best_step": self.best_step,
                "restored_best": restored, "stopped_early": stopped_early, "history": self.history}


def clear_checkpoint(checkpoint_dir: str | Path) -> None:
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    shutil.rmtree(str(checkpoint_dir) + "-best", ignore_errors=True)


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step")


def parameter_groups(model, params) -> list[dict]:
    """AdamW groups: weight decay except on biases and norms; the token embeddings (new vocabulary rows included,
    also as LoRA's trainable-token delta) at ``params.embedding_lr`` when it is set."""
    embedding_ids = set()
    if params.embedding_lr:
        embedding_ids = {id(p) for p in model[0].auto_model.get_input_embeddings().parameters()}
    decay, no_decay, embeddings = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue   # frozen (embeddings in a second stage) or outside the LoRA adapter
        if id(parameter) in embedding_ids:
            embeddings.append(parameter)
        elif "bias" in name or "norm" in name.lower():
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    groups = [{"params": decay, "weight_decay": params.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if embeddings:
        groups.append({"params": embeddings, "weight_decay": params.weight_decay, "lr": params.embedding_lr})
    elif params.embedding_lr:
        log.warning("train.embedding_lr is set but no token-embedding parameter is trainable (frozen?)")
    return [g for g in groups if g["params"]]


def _save_checkpoint(directory: Path, model, optimizer, scheduler, step: int, fingerprint: str) -> None:
    from safetensors.torch import save_file

    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / "model.safetensors"))
    # Optimizer/scheduler/RNG state is tensors and numbers; it is read back with weights_only=True (no pickle code).
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "trainer_state.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "fingerprint": fingerprint}))
    shutil.rmtree(directory, ignore_errors=True)
    tmp.rename(directory)


def _load_checkpoint(directory: Path, model, optimizer, scheduler, fingerprint: str) -> int:
    state_file = directory / "state.json"
    if not state_file.exists():
        return 0
    state = json.loads(state_file.read_text())
    if state.get("fingerprint") != fingerprint:
        log.info("checkpoint in %s is from other params or data; starting fresh", directory)
        clear_checkpoint(directory)
        return 0
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    trainer_state = torch.load(directory / "trainer_state.pt", weights_only=True)
    optimizer.load_state_dict(trainer_state["optimizer"])
    scheduler.load_state_dict(trainer_state["scheduler"])
    torch.set_rng_state(trainer_state["torch_rng"])
    log.info("resuming training from step %d (%s)", state["step"], directory)
    return int(state["step"])
