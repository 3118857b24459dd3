"""InfoNCE over in-batch and hard negatives, with a temperature, uneven negative counts and false negatives masked
by passage id.

For query i the candidates are every positive and every hard negative of the batch (of all processes under
torchrun); its positive column is the target of a softmax over cos(q_i, c_j) / temperature. A candidate that is
another query's text but one of query i's own positives (a duplicate passage, a second relevant answer) would
teach the model to push a relevant passage away: it is masked. sentence-transformers' MultipleNegativesRankingLoss
computes the same softmax (scale = 1 / temperature) but needs the same number of negatives for every query and
cannot mask by id; with equal groups and nothing to mask the two are equal (tests/test_training_losses.py).

Example::

    loss = infonce(query_embeddings, candidate_embeddings, label, temperature=0.02)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bgetune.training.data import PAD


def false_negative_mask(query_positive_ids: torch.Tensor, candidate_ids: torch.Tensor,
                        positive_column: torch.Tensor) -> torch.Tensor:
    """(B, C) True where candidate j is one of query i's positives but not its label column."""
    is_positive = (query_positive_ids.unsqueeze(1) == candidate_ids.view(1, -1, 1)) \
        & (query_positive_ids.unsqueeze(1) != PAD)
    mask = is_positive.any(dim=2)
    mask[torch.arange(len(positive_column), device=mask.device), positive_column] = False
    return mask


def infonce(queries: torch.Tensor, candidates: torch.Tensor, label: dict, temperature: float) -> torch.Tensor:
    """Mean over queries of −log softmax(cos / temperature)[positive column], false negatives and padding masked.

    ``label["weight"]`` (optional, a scalar) rescales the mean (under torchrun each process's share of the global
    batch, so that averaged gradients equal one process's with the whole batch)."""
    scores = F.normalize(queries.float(), dim=-1) @ F.normalize(candidates.float(), dim=-1).T / temperature
    mask = false_negative_mask(label["query_positive_ids"], label["candidate_ids"], label["positive_column"])
    if "candidate_padding" in label:
        mask |= label["candidate_padding"].view(1, -1)
    scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
    loss = F.cross_entropy(scores, label["positive_column"], reduction="sum")
    return loss * label.get("weight", 1.0 / len(queries))
