"""InfoNCE over in-batch and hard negatives, with a temperature, uneven negative counts and false negatives masked
by passage id.

For query i the candidates are every positive and every hard negative of the batch (of all processes under
torchrun); its positive column is the target of a softmax over cos(q_i, c_j) / temperature. A candidate that is
another query's text but one of query i's own positives (a duplicate passage, a second relevant answer) would
teach the model to push a relevant passage away: it is masked. sentence-transformers' MultipleNegativesRankingLoss
computes the same softmax (scale = 1 / temperature) but needs the same number of negatives for every query and
cannot mask by id; with equal groups and nothing to mask the two are equal (tests/test_training_losses.py).

The same options as that loss, with the same meaning, each masked by passage id as above:

- ``directions``: besides query → passages, passage → queries (each positive must pick its own query among the
  batch's; the symmetric loss of Jina Embeddings 2), query → queries and passage → passages (the batch's same-side
  texts as more negatives: GTE's "improved contrastive loss", Li et al. 2023). Two queries that share a positive are
  paraphrases, never each other's negatives; a passage's own group is not its negative. Under torchrun the
  query-side terms see this process's queries (the candidates are every process's).
- ``partition_mode``: ``joint``, one softmax over every selected direction's scores; ``per_direction``, one per
  direction, averaged (query → passages and passage → queries only).
- ``hardness_mode`` / ``hardness_strength`` (α): α · cos, without gradient, added to the chosen negatives' logits
  (in-batch ones: Lan et al. 2025, α = 9; the query's own hard negatives: EmbeddingGemma, α = 5; or all), so the
  negatives closest to the query weigh more in the softmax.

Example::

    loss = infonce(query_embeddings, candidate_embeddings, label, temperature=0.02)
    loss = infonce(q, c, label, 0.02, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
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


def own_group_mask(label: dict) -> torch.Tensor:
    """(B, C) True on each query's own group: its positive column and its hard negatives' columns."""
    columns = label["group_columns"]
    own = torch.zeros(len(columns), len(label["candidate_ids"]), dtype=torch.bool, device=columns.device)
    rows = torch.arange(len(columns), device=columns.device).view(-1, 1).expand_as(columns)
    own[rows[columns >= 0], columns[columns >= 0]] = True
    return own


def infonce(queries: torch.Tensor, candidates: torch.Tensor, label: dict, temperature: float,
            directions: tuple[str, ...] = ("query_to_doc",), partition_mode: str = "joint",
            hardness_mode: str = "off", hardness_strength: float = 0.0) -> torch.Tensor:
    """Mean over queries of −log softmax(cos / temperature)[positive column], false negatives and padding masked.

    ``label["weight"]`` (optional, a scalar) rescales the mean (under torchrun each process's share of the global
    batch, so that averaged gradients equal one process's with the whole batch)."""
    q, c = F.normalize(queries.float(), dim=-1), F.normalize(candidates.float(), dim=-1)
    rows = torch.arange(len(q), device=q.device)
    positive_column = label["positive_column"]
    cosines = q @ c.T
    scores = cosines / temperature
    if hardness_mode != "off" and hardness_strength > 0:
        scores = scores + hardness_strength * cosines.detach() * hardness_targets(label, hardness_mode)
    mask = false_negative_mask(label["query_positive_ids"], label["candidate_ids"], positive_column)
    if "candidate_padding" in label:
        mask |= label["candidate_padding"].view(1, -1)
    lowest = torch.finfo(scores.dtype).min
    blocks = {"query_to_doc": scores.masked_fill(mask, lowest)}
    positive_ids, query_positive_ids = label["candidate_ids"][positive_column], label["query_positive_ids"]
    positives = c[positive_column]
    if "doc_to_query" in directions:
        # row i: query i's positive against every query; another query that the passage also answers is masked
        answers = (query_positive_ids.unsqueeze(0) == positive_ids.view(-1, 1, 1)).any(dim=2)   # (B, B): p_i of q_j
        answers[rows, rows] = False
        blocks["doc_to_query"] = (positives @ q.T / temperature).masked_fill(answers, lowest)
    if "query_to_query" in directions:
        # queries sharing a positive are paraphrases: masked like the query itself
        shared = (query_positive_ids.view(len(q), 1, -1, 1) == query_positive_ids.view(1, len(q), 1, -1)) \
            & (query_positive_ids.view(len(q), 1, -1, 1) != PAD)
        same = shared.flatten(2).any(dim=2)
        same[rows, rows] = True
        blocks["query_to_query"] = (q @ q.T / temperature).masked_fill(same, lowest)
    if "doc_to_doc" in directions:
        # row i: query i's positive against every candidate but query i's own group (its label column included)
        # and what query_to_doc masks (copies of its positives, padding)
        blocks["doc_to_doc"] = (positives @ c.T / temperature).masked_fill(own_group_mask(label) | mask, lowest)
    positive = blocks["query_to_doc"][rows, positive_column]
    if partition_mode == "joint":
        log_partition = torch.logsumexp(torch.cat(list(blocks.values()), dim=1), dim=1)
    else:
        log_partition = torch.stack([torch.logsumexp(block, dim=1) for block in blocks.values()]).mean(dim=0)
    loss = (log_partition - positive).sum()
    return loss * label.get("weight", 1.0 / len(queries))


def hardness_targets(label: dict, mode: str) -> torch.Tensor:
    """(B, C) 1.0 on the negatives ``mode`` penalises: other queries' candidates (in_batch_negatives), the query's
    own hard negatives (hard_negatives) or both (all_negatives); 0.0 elsewhere, and always on the positive."""
    own = own_group_mask(label)
    if mode == "in_batch_negatives":
        chosen = ~own
    elif mode == "hard_negatives":
        chosen = own
    else:
        chosen = torch.ones_like(own)
    chosen[torch.arange(len(own), device=own.device), label["positive_column"]] = False
    return chosen.float()
