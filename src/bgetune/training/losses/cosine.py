"""Cosine regression over each query's group: cos(query, positive) → 1, cos(query, negative) → 0
(sentence-transformers' CosineSimilarityLoss on the pairs of the group).

Example::

    loss = cosine(query_embeddings, candidate_embeddings, label, st_loss=CosineSimilarityLoss(model))
"""
from __future__ import annotations

import torch

from bgetune.training.data import PAD


def group_pairs(queries: torch.Tensor, candidates: torch.Tensor, label: dict):
    """(anchor embeddings, other embeddings, 1/0 targets) for every (query, group member) pair."""
    columns = label["group_columns"]
    rows, slots = torch.nonzero(columns != PAD, as_tuple=True)
    targets = (slots == 0).float()   # the first column of a group is its positive
    return queries[rows], candidates[columns[rows, slots]], targets


def cosine(queries: torch.Tensor, candidates: torch.Tensor, label: dict, st_loss) -> torch.Tensor:
    anchors, others, targets = group_pairs(queries, candidates, label)
    return st_loss.compute_loss_from_embeddings([anchors, others], targets.to(anchors.device))
