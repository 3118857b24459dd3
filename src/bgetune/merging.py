"""Weighted merging of model weights (LM-Cocktail style): keep general ability while keeping the domain gain.

Any number of models with the same architecture are averaged, θ = Σ w_i θ_i / Σ w_i. A model whose vocabulary is
smaller (the original base, before vocabulary expansion) contributes nothing to the rows it does not have: those
rows are the other models' average, so new tokens are never diluted by rows that were never trained.

Weights are given, or chosen:
- ``choose_grid_weight``: the fine-tuned weight on a grid, judged on val NDCG@10 and, when a general set is
  given, general NDCG@10: the weight that keeps ``keep_in_domain`` of the fine-tuned model's val NDCG@10 and the
  most general ability;
- ``example_weights``: LM-Cocktail's merge with data — each model's InfoNCE loss on a few in-domain examples,
  weights = softmax(−loss / temperature): models that fit the examples better weigh more.

The merged model is saved through the *base* model object, so its pooling, normalisation and prompts are the
base's, never a default that silently changes retrieval.

Example::

    merged = merge_state_dicts([base.state_dict(), tuned.state_dict()], [0.5, 0.5])
"""
from __future__ import annotations

import logging
import math
import re

import torch

from bgetune.errors import BgetuneError

log = logging.getLogger("bgetune")


class MergeError(BgetuneError, ValueError):
    """The models cannot be merged (different architectures); the message names the parameter."""


def merge_state_dicts(state_dicts: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """Σ w_i · θ_i / Σ w_i for floating-point tensors. A tensor with fewer rows in some models (a smaller
    vocabulary) is averaged row by row over the models that have the row. Integer buffers come from the first
    model with the full shape."""
    if len(state_dicts) != len(weights):
        raise MergeError(f"{len(state_dicts)} models but {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise MergeError(f"merge weights must be non-negative with a positive sum, got {weights}")
    keys = state_dicts[0].keys()
    for n, sd in enumerate(state_dicts[1:], start=1):
        if sd.keys() != keys:
            raise MergeError(f"model {n} has different parameters: {sorted(set(sd) ^ set(keys))[:5]}")
    merged = {}
    for key in keys:
        tensors = [sd[key] for sd in state_dicts]
        full = max(tensors, key=lambda t: (t.shape[0] if t.dim() else 0))
        for n, t in enumerate(tensors):
            if t.shape[1:] != full.shape[1:] or (t.dim() == 0) != (full.dim() == 0):
                raise MergeError(f"model {n}: {key} has shape {tuple(t.shape)}, another has {tuple(full.shape)}")
        if not full.is_floating_point():
            merged[key] = full.clone()
            continue
        # On the device of the largest model's tensor (a GPU when the models are there); another model's tensor
        # may sit elsewhere (a base state kept on the CPU) and is brought over.
        total = torch.zeros_like(full, dtype=torch.float32)
        weight_sum = torch.zeros(full.shape[0] if full.dim() else 1, dtype=torch.float32, device=full.device)
        for w, t in zip(weights, tensors):
            rows = t.shape[0] if t.dim() else 1
            if t.dim():
                total[:rows] += w * t.to(full.device).float()
            else:
                total += w * t.to(full.device).float()
            weight_sum[:rows] += w
        if (weight_sum == 0).any():
            raise MergeError(f"{key}: some rows have zero total weight (give a model that has them a weight > 0)")
        shape = (-1,) + (1,) * (full.dim() - 1) if full.dim() else ()
        merged[key] = (total / (weight_sum.view(shape) if full.dim() else weight_sum[0])).to(full.dtype)
    return merged


def merge_models(base_model, other_models: list, weights: list[float], base_state: dict | None = None):
    """Load the weighted average of base + others into ``base_model`` (in place) and return it."""
    states = [base_state if base_state is not None else base_model.state_dict()] + [m.state_dict() for m in
                                                                                     other_models]
    merged = merge_state_dicts(states, weights)
    current = base_model.state_dict()
    if any(merged[k].shape != current[k].shape for k in merged):
        _resize_like(base_model, merged)
    base_model.load_state_dict(merged)
    return base_model


def _resize_like(model, state: dict) -> None:
    transformer = model[0].auto_model
    rows = transformer.get_input_embeddings().weight.shape[0]
    wanted = next(v.shape[0] for k, v in state.items() if k.endswith("word_embeddings.weight"))
    if wanted != rows:
        transformer.resize_token_embeddings(wanted, mean_resizing=False)


_LAYER = re.compile(r"(?:encoder\.layers?|layers?)\.(\d+)\.")


def layer_of(name: str) -> str:
    """A parameter's layer group: "embeddings", "layer 0", "layer 1", …, or "other" (pooler, heads)."""
    match = _LAYER.search(name)
    if match:
        return f"layer {int(match.group(1))}"
    return "embeddings" if "embeddings" in name else "other"


def layer_changes(base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor]) -> list[dict]:
    """Per layer group: ‖θ_tuned − θ_base‖ / ‖θ_base‖ over its floating-point weights (rows both have), in model
    order. Which layers moved is where the domain went, and what merging pulls back."""
    groups: dict[str, list[float]] = {}
    order: list[str] = []
    for key, base in base_state.items():
        tuned = tuned_state.get(key)
        if tuned is None or not base.is_floating_point() or tuned.shape[1:] != base.shape[1:]:
            continue
        rows = min(base.shape[0], tuned.shape[0]) if base.dim() else None
        base_part = base[:rows] if rows is not None else base
        tuned_part = tuned[:rows] if rows is not None else tuned
        group = layer_of(key)
        if group not in groups:
            groups[group] = [0.0, 0.0, 0]
            order.append(group)
        groups[group][0] += (tuned_part.float() - base_part.float()).pow(2).sum().item()
        groups[group][1] += base_part.float().pow(2).sum().item()
        groups[group][2] += base_part.numel()
    return [{"layer": g, "relative_change": round((groups[g][0] ** 0.5) / max(groups[g][1] ** 0.5, 1e-12), 8),
             "parameters": int(groups[g][2])} for g in order]


def search_merge_weights(model, base_state: dict, tuned_state: dict, grid: list[float], evaluate) -> list[dict]:
    """Evaluate (1 − w)·base + w·fine-tuned for each w in ``grid``; ``evaluate(model)`` returns metrics. The model
    is left holding the last merge tried: reload what you need afterwards."""
    trials = []
    for weight in sorted(grid):
        model.load_state_dict(merge_state_dicts([base_state, tuned_state], [1.0 - weight, weight]))
        trials.append({"finetuned_weight": weight, **evaluate(model)})
        log.info("merge search: fine-tuned weight %.2f → %s", weight,
                 ", ".join(f"{k} {v:.4f}" for k, v in trials[-1].items() if k != "finetuned_weight"))
    return trials


def choose_grid_weight(trials: list[dict], keep_in_domain: float, base_ood: float | None,
                       ood_tolerance: float) -> tuple[dict, str]:
    """The trial that keeps ``keep_in_domain`` of the fine-tuned model's val NDCG@10 (the w = 1 trial) and, among
    those, has the best general NDCG@10 (no general set: the smallest fine-tuned weight, i.e. the most base).
    A general NDCG@10 below the base's by more than ``ood_tolerance`` rules a trial out unless every one is."""
    tuned = next((t for t in trials if t["finetuned_weight"] == 1.0), max(trials, key=lambda t: t["finetuned_weight"]))
    floor = keep_in_domain * tuned["val_ndcg@10"]
    eligible = [t for t in trials if t["val_ndcg@10"] >= floor - 1e-9]
    reason = f"keeps >= {keep_in_domain:.0%} of the fine-tuned val NDCG@10 ({tuned['val_ndcg@10']:.4f})"
    if base_ood is None:
        best = min(eligible, key=lambda t: t["finetuned_weight"])
        return best, reason + "; the most base weight (no general set given)"
    general = [t for t in eligible if t["ood_ndcg@10"] >= base_ood - ood_tolerance] or eligible
    best = max(general, key=lambda t: (round(t["ood_ndcg@10"], 6), t["finetuned_weight"]))
    return best, reason + "; then the best general NDCG@10"


def example_weights(losses: list[float], temperature: float) -> list[float]:
    """LM-Cocktail's weights from each model's loss on the examples: softmax(−loss / temperature)."""
    scaled = [-loss / temperature for loss in losses]
    top = max(scaled)
    exps = [math.exp(s - top) for s in scaled]
    return [e / sum(exps) for e in exps]
