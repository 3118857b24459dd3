"""Online contrastive loss over each query's group: only the hard pairs count — positives farther than the
nearest negative, negatives nearer than the farthest positive (sentence-transformers' OnlineContrastiveLoss).

Example::

    loss = online_contrastive(query_embeddings, candidate_embeddings, label, st_loss=OnlineContrastiveLoss(model))
"""
from __future__ import annotations

import torch

from bgetune.training.losses.cosine import group_pairs


def online_contrastive(queries: torch.Tensor, candidates: torch.Tensor, label: dict, st_loss) -> torch.Tensor:
    anchors, others, targets = group_pairs(queries, candidates, label)
    return st_loss.compute_loss_from_embeddings([anchors.float(), others.float()], targets.long().to(anchors.device))
