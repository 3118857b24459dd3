"""Noise penalty: push domain queries away from unrelated chit-chat, so a retriever can say "nothing relevant".

mean(relu(cos(query, noise text) − margin)), weighted by ``noise_weight``.

Example::

    loss = loss + noise_weight * noise_penalty(query_embeddings, noise_embeddings, margin=0.3)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def noise_penalty(queries: torch.Tensor, noise: torch.Tensor, margin: float) -> torch.Tensor:
    sims = F.normalize(queries.float(), dim=-1) @ F.normalize(noise.float(), dim=-1).T
    return F.relu(sims - margin).mean()
