"""Weighted merging of model weights (LM-Cocktail style): keep general ability while keeping the domain gain.

The merged model is saved through the *base* model object, so its pooling (CLS for BGE, mean for MiniLM),
normalisation and prompts are the base's, never a default that silently changes retrieval.

Example::

    merged = merge_models(base_model, [finetuned_model], weights=[0.5, 0.5])
    merged.save("models/merged")
"""
from __future__ import annotations

import re

import torch


class MergeError(ValueError):
    """The models cannot be merged (different architectures or vocabularies)."""


def merge_state_dicts(state_dicts: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """Σ w_i · θ_i / Σ w_i for floating-point tensors; integer buffers (position ids) come from the first."""
    if len(state_dicts) != len(weights):
        raise MergeError(f"{len(state_dicts)} models but {len(weights)} weights")
    total = float(sum(weights))
    first = state_dicts[0]
    for n, sd in enumerate(state_dicts[1:], start=1):
        if sd.keys() != first.keys():
            raise MergeError(f"model {n} has different parameters: {sorted(set(sd) ^ set(first))[:5]}")
        for key, value in sd.items():
            if value.shape != first[key].shape:
                raise MergeError(f"model {n}: {key} has shape {tuple(value.shape)}, model 0 has "
                                 f"{tuple(first[key].shape)} (different vocabularies? expand the base first)")
    merged = {}
    for key, value in first.items():
        if value.is_floating_point():
            merged[key] = sum(w * sd[key].float() for w, sd in zip(weights, state_dicts)).div(total).to(value.dtype)
        else:
            merged[key] = value.clone()
    return merged


def merge_models(base_model, other_models: list, weights: list[float]):
    """Load the weighted average of base + others into ``base_model`` (in place) and return it."""
    states = [base_model.state_dict()] + [m.state_dict() for m in other_models]
    base_model.load_state_dict(merge_state_dicts(states, weights))
    return base_model


_LAYER = re.compile(r"(?:encoder\.layers?|layers?)\.(\d+)\.")


def layer_of(name: str) -> str:
    """A parameter's layer group: "embeddings", "layer 0", "layer 1", …, or "other" (pooler, heads)."""
    match = _LAYER.search(name)
    if match:
        return f"layer {int(match.group(1))}"
    return "embeddings" if "embeddings" in name else "other"


def layer_changes(base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor]) -> list[dict]:
    """Per layer group: ‖θ_tuned − θ_base‖ / ‖θ_base‖ over its floating-point weights (Frobenius norms), in model
    order. Which layers moved is where the domain went, and what merging pulls back."""
    groups: dict[str, list[float]] = {}
    order: list[str] = []
    for key, base in base_state.items():
        tuned = tuned_state.get(key)
        if tuned is None or not base.is_floating_point() or tuned.shape != base.shape:
            continue
        group = layer_of(key)
        if group not in groups:
            groups[group] = [0.0, 0.0, 0]
            order.append(group)
        delta = (tuned.float() - base.float()).pow(2).sum().item()
        groups[group][0] += delta
        groups[group][1] += base.float().pow(2).sum().item()
        groups[group][2] += base.numel()
    return [{"layer": g, "relative_change": round((groups[g][0] ** 0.5) / max(groups[g][1] ** 0.5, 1e-12), 8),
             "parameters": int(groups[g][2])} for g in order]


def choose_merge_weight(trials: list[dict], base_ood: float | None, tolerance: float) -> tuple[dict, str]:
    """The trial with the best in-domain ``val_ndcg@10`` among those whose ``ood_ndcg@10`` stays within
    ``tolerance`` of the base's (all trials when there is no general set); ties go to the smaller fine-tuned weight.
    When none keeps general ability, the smallest fine-tuned weight is chosen and the reason says so."""
    if base_ood is None:
        eligible, reason = trials, "best val NDCG@10 (no general set given)"
    else:
        eligible = [t for t in trials if t["ood_ndcg@10"] >= base_ood - tolerance]
        reason = f"best val NDCG@10 with general NDCG@10 >= base {base_ood:.4f} - {tolerance}"
        if not eligible:
            return min(trials, key=lambda t: t["finetuned_weight"]), (
                f"no weight kept general NDCG@10 within {tolerance} of the base's: smallest fine-tuned weight")
    best = max(eligible, key=lambda t: (round(t["val_ndcg@10"], 6), -t["finetuned_weight"]))
    return best, reason


def search_merge_weights(model, base_state: dict, tuned_state: dict, grid: list[float], evaluate) -> list[dict]:
    """Evaluate the merge (1 − w)·base + w·fine-tuned for each w in ``grid``; ``evaluate(model)`` returns metrics.
    The model is left holding the last merge tried: reload what you need afterwards."""
    trials = []
    for weight in sorted(grid):
        model.load_state_dict(merge_state_dicts([base_state, tuned_state], [1.0 - weight, weight]))
        result = evaluate(model)
        trials.append({"finetuned_weight": weight, **result})
    return trials
