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


LOSSES = ("infonce", "cached_infonce", "cosine", "online_contrastive")


def noise_penalty(queries: torch.Tensor, noise: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean of relu(cos(query, noise text) − margin): pushes unrelated chit-chat away from domain queries."""
    sims = F.normalize(queries, dim=-1) @ F.normalize(noise, dim=-1).T
    return F.relu(sims - margin).mean()


def features(model, texts: list[str], prompt: str = "") -> dict:
    batch = model.preprocess(texts, prompt=prompt or None)
    return {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}


def embed(model, texts: list[str], prompt: str = "") -> torch.Tensor:
    return model(features(model, texts, prompt))["sentence_embedding"]


class BatchLoss:
    """The loss of one batch of groups (query, positive, negatives) for ``train.loss``.

    - ``infonce``: InfoNCELoss above, in-batch + hard negatives, false negatives masked by id;
    - ``cached_infonce``: sentence-transformers' CachedMultipleNegativesRankingLoss (GradCache): the same softmax
      over a large batch, computed in mini-batches so memory stays that of ``mini_batch_size``;
    - ``cosine``: sentence-transformers' CosineSimilarityLoss, regressing cos(query, passage) to 1 for positives
      and 0 for negatives;
    - ``online_contrastive``: sentence-transformers' OnlineContrastiveLoss over the same labelled pairs (only the
      hard positives and negatives of each batch count).

    Any of them adds ``noise_weight · noise_penalty`` when noise texts are given.

    Example::

        loss_fn = BatchLoss(model, "infonce", params.train, instruction="")
        loss = loss_fn(groups)
        loss.backward()
    """

    def __init__(self, model, kind: str, params, instruction: str = "", noise_texts: list[str] | None = None,
                 context=None):
        from sentence_transformers.sentence_transformer import losses as st_losses

        from bgetune.training.distributed import DistributedContext

        self.model, self.kind, self.params, self.instruction = model, kind, params, instruction
        self.noise_texts = noise_texts or []
        self.context = context or DistributedContext()
        # cached_infonce needs as many negatives per query as every other query of its batch has; the rest are
        # counted here so the training summary can say how many it never saw.
        self.negatives_left_out = 0
        if kind == "infonce":
            self.loss = InfoNCELoss(params.temperature)
        elif kind == "cached_infonce":
            self.loss = st_losses.CachedMultipleNegativesRankingLoss(
                model, scale=1.0 / params.temperature, mini_batch_size=params.mini_batch_size,
                gather_across_devices=self.context.enabled)
        elif kind == "cosine":
            self.loss = st_losses.CosineSimilarityLoss(model)
        elif kind == "online_contrastive":
            self.loss = st_losses.OnlineContrastiveLoss(model, margin=params.contrastive_margin)
        else:
            raise ValueError(f"unknown loss {kind!r}; known: {LOSSES}")

    def __call__(self, groups, rng=None) -> torch.Tensor:
        """``groups``: the whole (global) batch; under torchrun each process embeds only its shard."""
        if self.kind == "infonce" and self.context.enabled:
            return self._distributed_infonce(groups, rng)
        groups = self.context.shard(groups) if self.context.enabled else groups
        queries = [g.query for g in groups]
        query_embeddings = None
        if self.kind == "infonce":
            candidates = [g.positive for g in groups] + [n for g in groups for n in g.negatives]
            candidate_ids = [g.positive_id for g in groups] + [i for g in groups for i in g.negative_ids]
            labels = list(range(len(groups)))
            mask = false_negative_mask([g.positive_ids for g in groups], candidate_ids, labels)
            query_embeddings = embed(self.model, queries, self.instruction)
            loss = self.loss(query_embeddings, embed(self.model, candidates), torch.tensor(labels), mask)
        elif self.kind == "cached_infonce":
            # Columns: queries, positives, then as many negative columns as every group of the batch has.
            columns = min((len(g.negatives) for g in groups), default=0)
            self.negatives_left_out += sum(len(g.negatives) - columns for g in groups)
            sentence_features = [features(self.model, queries, self.instruction),
                                 features(self.model, [g.positive for g in groups])]
            sentence_features += [features(self.model, [g.negatives[c] for g in groups]) for c in range(columns)]
            loss = self.loss(sentence_features, None)
        else:
            anchors, others, labels = [], [], []
            for g in groups:
                anchors.append(g.query)
                others.append(g.positive)
                labels.append(1.0)
                for negative in g.negatives:
                    anchors.append(g.query)
                    others.append(negative)
                    labels.append(0.0)
            sentence_features = [features(self.model, anchors, self.instruction), features(self.model, others)]
            target = torch.tensor(labels, device=self.model.device)
            loss = self.loss(sentence_features, target if self.kind == "cosine" else target.long())
        if self.noise_texts and self.params.noise_weight > 0:
            if query_embeddings is None:
                query_embeddings = embed(self.model, queries, self.instruction)
            loss = loss + self._noise_term(query_embeddings, rng)
        return loss

    def _noise_term(self, query_embeddings: torch.Tensor, rng=None) -> torch.Tensor:
        """noise_weight · noise_penalty against as many noise texts as queries (all of them without an rng)."""
        sample = self.noise_texts if rng is None else rng.sample(self.noise_texts,
                                                                 min(len(self.noise_texts), len(query_embeddings)))
        return self.params.noise_weight * noise_penalty(query_embeddings, embed(self.model, sample),
                                                        self.params.noise_margin)

    def _distributed_infonce(self, groups, rng=None) -> torch.Tensor:
        """InfoNCE over every process's candidates: the same loss (and, averaged, the same gradient) as one process
        with the whole batch. Negative lists are padded to one length (all_gather needs equal shapes) and the
        padding masked."""
        context = self.context
        local = context.shard(groups)
        offset = context.rank * len(local)
        width = max(len(g.negatives) for g in groups)
        query_embeddings = embed(self.model, [g.query for g in local], self.instruction)
        positives = context.gather(embed(self.model, [g.positive for g in local]))
        candidate_ids = [g.positive_id for g in groups]
        padding = []
        for g in groups:
            candidate_ids += g.negative_ids + [""] * (width - len(g.negatives))
            padding += [False] * len(g.negatives) + [True] * (width - len(g.negatives))
        if width:
            texts = [t for g in local for t in g.negatives + [""] * (width - len(g.negatives))]
            candidates = torch.cat([positives, context.gather(embed(self.model, texts))], dim=0)
        else:
            candidates = positives
        labels = [offset + i for i in range(len(local))]
        mask = false_negative_mask([g.positive_ids for g in local], candidate_ids, labels)
        mask[:, len(groups):] |= torch.tensor(padding, dtype=torch.bool)
        loss = self.loss(query_embeddings, candidates, torch.tensor(labels, device=candidates.device),
                         mask.to(candidates.device))
        if self.noise_texts and self.params.noise_weight > 0:
            loss = loss + self._noise_term(query_embeddings, rng)
        return loss
