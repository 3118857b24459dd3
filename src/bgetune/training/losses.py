"""InfoNCE over in-batch and hard negatives, with a temperature and a false-negative mask by passage id.

sentence-transformers' MultipleNegativesRankingLoss computes the same softmax (scale = 1 / temperature) but needs
the same number of negatives for every query; this one takes any number (including none) and masks a candidate
that is another query's passage but one of this query's positives.

Example::

    loss_fn = InfoNCELoss(temperature=0.02)
    loss = loss_fn(query_emb, candidate_emb, labels, mask)   # candidates = positives then all negatives
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InfoNCELoss(nn.Module):
    def __init__(self, temperature: float = 0.02):
        super().__init__()
        self.temperature = temperature

    def forward(self, queries: torch.Tensor, candidates: torch.Tensor, labels: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T / self.temperature
        if mask is not None:
            scores = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        return F.cross_entropy(scores, labels)


def false_negative_mask(positive_ids: list[set[str]], candidate_ids: list[str], labels: list[int]) -> torch.Tensor:
    """True where candidate j is one of query i's positives but not its label column."""
    mask = torch.zeros(len(positive_ids), len(candidate_ids), dtype=torch.bool)
    for i, ids in enumerate(positive_ids):
        for j, cid in enumerate(candidate_ids):
            if j != labels[i] and cid in ids:
                mask[i, j] = True
    return mask
