"""LoRA through peft: wrap the transformer, train only the adapters (and the rows of newly added tokens), then merge
the adapters back so the saved model is a plain sentence-transformers folder that needs no peft to load.

Example::

    report = add_lora(model, params.train.lora, old_vocab_size=30522)
    lr, source = adapter_lr(params.train)               # train.lora.lr, else train.lr
    train(model, ...)
    merge_lora(model, "models/finetuned/lora_adapter")   # adapter kept for peft users; model now plain again
"""
from __future__ import annotations

from pathlib import Path


def add_lora(model, lora_params, old_vocab_size: int | None = None, seed: int = 0) -> dict:
    """Wrap the transformer with LoRA adapters (initialised from ``seed``: the same run gives the same adapters)."""
    import torch
    from peft import LoraConfig, get_peft_model

    transformer = model[0].auto_model
    check_target_modules(transformer, lora_params.target_modules)
    vocab_size = transformer.get_input_embeddings().weight.shape[0]
    # Tokens added by vocabulary expansion start from a mean embedding: without training them LoRA could not use
    # them, so their rows (only theirs) are trainable too.
    new_ids = list(range(old_vocab_size, vocab_size)) if old_vocab_size and old_vocab_size < vocab_size else None
    config = LoraConfig(r=lora_params.r, lora_alpha=lora_params.alpha, lora_dropout=lora_params.dropout,
                        target_modules=list(lora_params.target_modules), bias="none",
                        trainable_token_indices={"word_embeddings": new_ids} if new_ids else None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _set_transformer(model, get_peft_model(transformer, config))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "total_parameters": total, "new_token_rows": len(new_ids or [])}


def adapter_lr(train) -> tuple[float, str]:
    """The learning rate a LoRA run trains at, and the key it came from: ``train.lora.lr``, else ``train.lr``."""
    if train.lora.lr is not None:
        return train.lora.lr, "train.lora.lr"
    return train.lr, "train.lr, as train.lora.lr is null"


def check_target_modules(transformer, targets: list[str]) -> None:
    """Every name in train.lora.target_modules must name a layer of ``transformer`` (peft's rule: the module's full
    name, or its last parts after a dot). peft refuses only when none matches; a misspelt one among several would
    quietly leave those layers untrained, so each is checked."""
    import torch

    from bgetune.params import ParamsError

    names = [name for name, _ in transformer.named_modules() if name]
    missing = [t for t in targets if not any(name == t or name.endswith("." + t) for name in names)]
    if missing:
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in transformer.named_modules()
                         if isinstance(module, torch.nn.Linear)})
        raise ParamsError(f"train.lora.target_modules: {', '.join(map(repr, missing))} name no layer of "
                          f"{type(transformer).__name__}; its linear layers are named {', '.join(linear)}")


def merge_lora(model, adapter_dir: str | Path) -> dict:
    """Save the adapter to ``adapter_dir`` (safetensors), then fold it into the weights and drop peft."""
    peft_model = model[0].auto_model
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    peft_model.save_pretrained(str(adapter_dir), safe_serialization=True)
    _set_transformer(model, peft_model.merge_and_unload())
    return {"adapter_saved": True, "trainable_parameters": trainable}


def _set_transformer(model, module) -> None:
    # sentence-transformers 6: Transformer.auto_model is a read-only view of Transformer.model.
    module_holder = model[0]
    if hasattr(type(module_holder), "auto_model") and isinstance(type(module_holder).auto_model, property):
        module_holder.model = module
    else:
        module_holder.auto_model = module
