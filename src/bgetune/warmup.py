"""Masked-language-model warm-up of a vocabulary-expanded model before contrastive training.

New token rows start as draws from the old rows' distribution: contrastive training has to teach them meaning
from a few thousand queries. A few hundred MLM steps on the corpus's own passages teach them first, cheaply and
without labels. ``vocab.warmup_scope``: ``embeddings`` trains only the new rows (old rows and layers untouched),
``top_layers`` also the top two layers, ``all`` everything. The MLM head is new (sentence-transformers folders
carry none) and is dropped afterwards; the encoder's weights are copied back.

Runs on Hugging Face's Trainer with its masked-LM collator (15% masking), seeded.

Example::

    report = masked_lm_warmup(model, passage_texts, params.vocab, seed=42, device="cuda", precision="bf16")
"""
from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger("bgetune")


def masked_lm_warmup(model, texts: list[str], vocab_params, seed: int, device: str, precision: str,
                     progress: bool = True, old_vocab_size: int | None = None) -> dict:
    from datasets import Dataset
    from transformers import (AutoModelForMaskedLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments,
                              set_seed)

    from bgetune.device import trainer_precision_args

    started = time.perf_counter()
    set_seed(seed)
    transformer = model[0].auto_model
    tokenizer = model.tokenizer
    if tokenizer.mask_token is None:
        raise ValueError("vocab.warmup_steps needs a tokenizer with a [MASK] token")
    mlm = AutoModelForMaskedLM.from_config(transformer.config)
    missing, _ = mlm.base_model.load_state_dict(transformer.state_dict(), strict=False)
    if any("embeddings" in k or "encoder" in k for k in missing):
        raise ValueError(f"vocab.warmup_steps: the encoder's weights do not fit a masked-LM model ({missing[:3]})")
    mlm.tie_weights()
    rows = mlm.get_input_embeddings().weight
    new_from = old_vocab_size if old_vocab_size is not None else rows.shape[0]
    trainable = _select(mlm, vocab_params.warmup_scope)
    if vocab_params.warmup_scope == "embeddings":
        # Only the new rows learn: old rows' gradients are zeroed (and no weight decay touches them).
        rows.register_hook(lambda grad: torch.cat([torch.zeros_like(grad[:new_from]), grad[new_from:]]))
    length = min(128, model[0].document_length or 128)
    encoded = tokenizer(texts, truncation=True, max_length=length, add_special_tokens=True)
    dataset = Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]})
    args = TrainingArguments(output_dir=".bgetune/warmup", max_steps=vocab_params.warmup_steps,
                             per_device_train_batch_size=vocab_params.warmup_batch_size,
                             learning_rate=vocab_params.warmup_lr, weight_decay=0.0, warmup_steps=0.1,
                             logging_steps=max(1, vocab_params.warmup_steps // 10), save_strategy="no",
                             report_to="none", seed=seed, data_seed=seed, use_cpu=device == "cpu",
                             disable_tqdm=not progress, **trainer_precision_args(precision))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    trainer = Trainer(model=mlm, args=args, train_dataset=dataset, data_collator=collator)
    trainer.train()
    state = {k: v for k, v in mlm.base_model.state_dict().items() if k in transformer.state_dict()}
    transformer.load_state_dict(state, strict=False)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report = {"steps": trainer.state.global_step, "scope": vocab_params.warmup_scope, "trainable_parameters": trainable,
              "first_loss": round(losses[0], 4) if losses else None, "final_loss": round(losses[-1], 4) if losses
              else None, "seconds": round(time.perf_counter() - started, 2)}
    log.info("vocabulary warm-up: %d MLM steps (%s), loss %s → %s", report["steps"], report["scope"],
             report["first_loss"], report["final_loss"])
    return report


def _select(mlm, scope: str) -> int:
    """Freeze what the scope leaves alone; returns the number of trainable parameters."""
    layers = [m for name, m in mlm.base_model.named_modules() if name.count(".") == 2 and ".layer." in f".{name}."]
    for parameter in mlm.parameters():
        parameter.requires_grad_(scope == "all")
    mlm.get_input_embeddings().weight.requires_grad_(True)
    for name, parameter in mlm.named_parameters():
        if not name.startswith(mlm.base_model_prefix):   # the MLM head (new) always trains
            parameter.requires_grad_(True)
    if scope == "top_layers":
        for layer in layers[-2:]:
            for parameter in layer.parameters():
                parameter.requires_grad_(True)
    return sum(p.numel() for p in mlm.parameters() if p.requires_grad)
