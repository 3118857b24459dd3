"""Knowledge distillation from teacher scores, as FlagEmbedding does: KL(teacher ‖ student) between the softmax
distributions over each query's own group (its positive and hard negatives).

The teacher's scores come with the training file (``pos_scores`` / ``neg_scores``: a reranker, a stronger
embedder, or the hybrid BM25 + dense ranking; see ``mining.teacher``); groups without scores are skipped.

Example::

    loss = loss + distill_weight * distillation(query_embeddings, candidate_embeddings, label, temperature=0.02)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bgetune.training.data import PAD


def distillation(queries: torch.Tensor, candidates: torch.Tensor, label: dict, temperature: float,
                 teacher_temperature: float = 1.0) -> torch.Tensor:
    columns, teacher = label["group_columns"], label["teacher_scores"]
    valid = (columns != PAD) & torch.isfinite(teacher)
    usable = valid[:, 0] & (valid.sum(dim=1) > 1)
    if not usable.any():
        return queries.sum() * 0.0
    q = F.normalize(queries[usable].float(), dim=-1)
    cols = columns[usable].clamp(min=0)
    c = F.normalize(candidates.float(), dim=-1)[cols]                    # (b, G, d)
    student = torch.einsum("bd,bgd->bg", q, c) / temperature
    keep = valid[usable]
    student = student.masked_fill(~keep, torch.finfo(student.dtype).min)
    target = (teacher[usable] / teacher_temperature).masked_fill(~keep, torch.finfo(torch.float32).min)
    return F.kl_div(F.log_softmax(student, dim=1), F.softmax(target, dim=1), reduction="batchmean")
