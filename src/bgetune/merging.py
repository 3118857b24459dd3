"""Weighted merging of model weights (LM-Cocktail style): keep general ability while keeping the domain gain.

The merged model is saved through the *base* model object, so its pooling (CLS for BGE, mean for MiniLM),
normalisation and prompts are the base's, never a default that silently changes retrieval.

Example::

    merged = merge_models(base_model, [finetuned_model], weights=[0.5, 0.5])
    merged.save("models/merged")
"""
from __future__ import annotations

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
