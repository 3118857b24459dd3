"""The training losses, one objective per file behind the ``OBJECTIVES`` registry, plus optional terms.

``build_loss(model, params)`` returns the ``nn.Module`` the sentence-transformers Trainer calls with the
collator's features (queries, candidates, optionally noise texts) and ``label`` dict:

    loss = objective(q, c, label)                               # infonce | cosine | online_contrastive
                                                                # (infonce: train.directions, hardness_mode)
         + noise_weight   · noise_penalty(q, noise)             # when train.noise_weight > 0
         + distill_weight · KL(teacher ‖ student over groups)   # when train.distill_weight > 0

Each column is embedded in length-sorted chunks of ``train.length_chunk_size`` texts (``training/length_chunks.py``):
the same embeddings and gradients as one pass, without padding every text to the batch's longest.

``cached_infonce`` is InfoNCE computed with GradCache (sentence-transformers' ``CachedLossMixin``): the batch is
embedded in mini-batches without a graph, the loss's gradient is cached per embedding, and each mini-batch is
re-embedded with a graph to back-propagate it — large batches (many in-batch negatives) in the memory of
``train.mini_batch_size`` texts, for about one extra forward pass.

Under torchrun, InfoNCE gathers every process's candidates (and their ids, for the false-negative mask) so each
query sees the whole global batch, as ``gather_across_devices`` does in sentence-transformers.

Example::

    loss = build_loss(model, params.train, processes=1)
    trainer = SentenceTransformerTrainer(model=model, loss=loss, ...)
"""
from __future__ import annotations

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from torch import nn

from bgetune.training.length_chunks import embed_in_length_chunks, resolve_length_chunk_size
from bgetune.training.losses.cosine import cosine
from bgetune.training.losses.distill import distillation
from bgetune.training.losses.infonce import infonce
from bgetune.training.losses.noise import noise_penalty
from bgetune.training.losses.online_contrastive import online_contrastive

OBJECTIVES = {"infonce": infonce, "cached_infonce": infonce, "cosine": cosine,
              "online_contrastive": online_contrastive}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message names the likely causes and the params to change."""


class GroupLoss(nn.Module):
    """Embed the batch's columns, then ``loss_from_embeddings``: the objective plus the enabled terms."""

    def __init__(self, model, kind: str, temperature: float = 0.02, noise_weight: float = 0.0,
                 noise_margin: float = 0.3, distill_weight: float = 0.0, distill_temperature: float = 0.02,
                 contrastive_margin: float = 0.5, gather_across_devices: bool = False, length_chunk_size: int = 0,
                 infonce_terms: dict | None = None):
        super().__init__()
        if kind not in OBJECTIVES:
            raise ValueError(f"unknown loss {kind!r}; known: {sorted(OBJECTIVES)}")
        self.model, self.kind, self.temperature = model, kind, temperature
        # directions, partition_mode, hardness_mode, hardness_strength (infonce's keywords)
        self.infonce_terms = infonce_terms or {}
        self.noise_weight, self.noise_margin = noise_weight, noise_margin
        self.distill_weight, self.distill_temperature = distill_weight, distill_temperature
        self.gather_across_devices = gather_across_devices and kind in ("infonce", "cached_infonce")
        self.length_chunk_size = length_chunk_size
        self.st_loss = None
        if kind == "cosine":
            from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss

            self.st_loss = CosineSimilarityLoss(model)
        elif kind == "online_contrastive":
            from sentence_transformers.sentence_transformer.losses import OnlineContrastiveLoss

            self.st_loss = OnlineContrastiveLoss(model, margin=contrastive_margin)

    def forward(self, features: list[dict], label: dict) -> torch.Tensor:
        embeddings = [embed_in_length_chunks(self.model, f, self.length_chunk_size) for f in features]
        return self.loss_from_embeddings(embeddings, label)

    def loss_from_embeddings(self, embeddings: list[torch.Tensor], label: dict) -> torch.Tensor:
        # The encoder may run under bf16/fp16 autocast; the score matrix may not: at temperature 0.02 bf16's
        # rounding of a cosine (steps of 0.004 near 0.8) moves a logit by 0.2. The matrix is small (queries ×
        # candidates), so it is computed in fp32 at no measurable cost.
        with torch.autocast(embeddings[0].device.type, enabled=False):
            return self._loss(*[e.float() for e in embeddings[:2]],
                              embeddings[2].float() if len(embeddings) > 2 else None, label)

    def _loss(self, queries: torch.Tensor, candidates: torch.Tensor, noise: torch.Tensor | None,
              label: dict) -> torch.Tensor:
        if self.gather_across_devices:
            candidates, label = gather_candidates(candidates, label, len(queries))
        if self.kind in ("infonce", "cached_infonce"):
            loss = infonce(queries, candidates, label, self.temperature, **self.infonce_terms)
        else:
            loss = OBJECTIVES[self.kind](queries, candidates, label, self.st_loss)
        if noise is not None and self.noise_weight > 0:
            loss = loss + self.noise_weight * noise_penalty(queries, noise, self.noise_margin)
        if self.distill_weight > 0:
            loss = loss + self.distill_weight * distillation(queries, candidates, label, self.temperature,
                                                             self.distill_temperature)
        if not torch.isfinite(loss):
            raise NonFiniteLoss(f"non-finite loss ({loss.item()}) in a training batch: likely causes are fp16 "
                                f"overflow (train.precision: bf16 or fp32), a learning rate too high or a temperature "
                                f"too low (train.temperature={self.temperature})")
        return loss


class CachedGroupLoss(CachedLossMixin, GroupLoss):
    """GroupLoss computed with GradCache: memory of ``mini_batch_size`` texts, any batch size."""

    def __init__(self, model, kind: str, mini_batch_size: int, **kwargs):
        GroupLoss.__init__(self, model, kind, **kwargs)
        self.mini_batch_size = mini_batch_size

    def forward(self, features: list[dict], label: dict) -> torch.Tensor:
        return self.forward_cached(features, label)

    def calculate_loss(self, reps: list[list[torch.Tensor]], labels=None, *, with_backward: bool = False):
        loss = self.loss_from_embeddings([torch.cat(mini_batches) for mini_batches in reps], labels)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


def build_loss(model, params, processes: int = 1) -> nn.Module:
    """The loss for ``train.loss`` with its terms; ``params`` is the train section (or a stage-2 view of it)."""
    # auto reads the teacher's scores as cosines, like the student's; the train step resolves it to 1 beforehand
    # when mining.teacher is a cross-encoder (negatives.teacher.distill_temperature).
    distill_temperature = (params.temperature if params.distill_temperature == "auto"
                           else params.distill_temperature)
    options = dict(temperature=params.temperature, noise_weight=params.noise_weight, noise_margin=params.noise_margin,
                   distill_weight=params.distill_weight, distill_temperature=distill_temperature,
                   contrastive_margin=params.contrastive_margin, gather_across_devices=processes > 1)
    if params.loss in ("infonce", "cached_infonce"):
        options["infonce_terms"] = {"directions": tuple(params.directions), "partition_mode": params.partition_mode,
                                    "hardness_mode": params.hardness_mode,
                                    "hardness_strength": params.hardness_strength}
    if params.loss == "cached_infonce":
        # GradCache embeds in its own mini-batches (of mini_batch_size texts, in batch order).
        return CachedGroupLoss(model, params.loss, params.mini_batch_size, **options)
    chunk_size = resolve_length_chunk_size(params.length_chunk_size, torch.device(model.device).type)
    return GroupLoss(model, params.loss, length_chunk_size=chunk_size, **options)


def gather_candidates(candidates: torch.Tensor, label: dict, local_queries: int) -> tuple[torch.Tensor, dict]:
    """Every process's candidates (with gradients) and ids, padded to one length; this process's positive columns
    shifted to its block; and the loss weight that makes averaged gradients equal one process's with the whole
    batch (this process's share of all queries)."""
    import torch.distributed as dist
    from sentence_transformers.util import all_gather, all_gather_with_grad

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return candidates, label
    device = candidates.device
    count = torch.tensor([len(candidates)], device=device)
    widest = count.clone()
    dist.all_reduce(widest, op=dist.ReduceOp.MAX)
    queries = torch.tensor([local_queries], device=device, dtype=torch.float64)
    dist.all_reduce(queries, op=dist.ReduceOp.SUM)
    width = int(widest.item())
    padding = width - len(candidates)
    padded = torch.nn.functional.pad(candidates, (0, 0, 0, padding))
    ids = torch.nn.functional.pad(label["candidate_ids"], (0, padding), value=-2)
    is_padding = torch.zeros(width, dtype=torch.bool, device=device)
    is_padding[len(candidates):] = True
    gathered = all_gather_with_grad(padded)
    label = dict(label)
    label["candidate_ids"] = all_gather(ids)
    label["candidate_padding"] = all_gather(is_padding)
    offset = dist.get_rank() * width
    label["positive_column"] = label["positive_column"] + offset
    columns = label["group_columns"]
    label["group_columns"] = torch.where(columns >= 0, columns + offset, columns)
    # DDP averages gradients over processes: weight = processes / all queries makes that the global mean.
    label["weight"] = dist.get_world_size() / float(queries.item())
    return gathered, label
