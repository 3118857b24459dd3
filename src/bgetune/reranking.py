"""Reranking: a cross-encoder reads each question together with each of the hybrid's top k passages and reorders
them, as a RAG pipeline's second stage does (FlagEmbedding's bge-reranker recipe). The bi-encoder's two towers
never see a question and a passage at once; a cross-encoder does, so its errors differ from both retrievers'.
Training it is bgetune.training.reranker (the rerank stage); this module scores and blends (the evaluate stages).

The final order of a question's top k is weight · reranker + (1 − weight) · hybrid, each min-max
normalised over the k (what ``blend`` computes; weight 1: the reranker alone, 0: the hybrid's order); the weight
is chosen on val (``tune_weight``). Passages below the top k keep the hybrid's order.

Example::

    reranker = load_reranker("models/reranker", max_length=256)
    scores = score_candidates(reranker, queries, [["p1", "p2"]], text_of)
    weight, trials = tune_weight(val_tops, val_scores, val_relevant)
    ranking = blend(["p1", "p2"], [0.9, 0.2], [0.1, 3.0], weight)
"""
from __future__ import annotations

import logging
from pathlib import Path

from bgetune.errors import BgetuneError

log = logging.getLogger("bgetune")
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))


class RerankError(BgetuneError):
    """The reranker cannot be trained or loaded; the message says which file or param."""


def normalised(scores: list[float]) -> list[float]:
    """Min-max over one question's candidates (all 1 where they are equal), as the convex hybrid normalises."""
    low, high = min(scores), max(scores)
    return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


def blend(candidates: list[str], hybrid_scores: list[float], reranker_scores: list[float], weight: float) -> list[str]:
    """The candidates ordered by weight · reranker + (1 − weight) · hybrid, both min-max normalised; ties keep the
    hybrid's order."""
    if not candidates:
        return []
    h, r = normalised(hybrid_scores), normalised(reranker_scores)
    final = [weight * rs + (1.0 - weight) * hs for hs, rs in zip(h, r)]
    return [candidates[i] for i in sorted(range(len(candidates)), key=lambda i: (-final[i], i))]


def reranked(tops: list[tuple[list[str], list[float]]], reranker_scores: list[list[float]], weight: float,
             rest: list[list[str]] | None = None) -> list[list[str]]:
    """Each question's top k blended at ``weight``, followed by ``rest`` (the hybrid's ranking below the k)."""
    out = []
    for q, ((ids, hybrid_scores), scores) in enumerate(zip(tops, reranker_scores)):
        order = blend(ids, hybrid_scores, scores, weight)
        if rest is not None:
            seen = set(order)
            order += [pid for pid in rest[q] if pid not in seen]
        out.append(order)
    return out


def tune_weight(tops: list[tuple[list[str], list[float]]], reranker_scores: list[list[float]],
                relevant: list[set[str]]) -> tuple[float, list[dict]]:
    """The reranker weight in ``WEIGHTS`` that ranks val best by NDCG@10; ties: the smaller (the hybrid alone is
    the simpler retriever). Returns the weight and every trial."""
    from bgetune.evaluation.metrics import ranking_metrics

    trials = [{"weight": w,
               "val_ndcg@10": ranking_metrics(reranked(tops, reranker_scores, w), relevant, [10])["ndcg@10"]}
              for w in WEIGHTS]
    best = max(trials, key=lambda t: (t["val_ndcg@10"], -t["weight"]))
    return best["weight"], trials


def load_reranker(reference: str | Path, max_length: int, device: str = "cpu", trust_remote_code: bool = False):
    """A saved cross-encoder (a folder or hub id) on ``device``."""
    from sentence_transformers.cross_encoder import CrossEncoder

    return CrossEncoder(str(reference), max_length=max_length, device=device, trust_remote_code=trust_remote_code)


def score_candidates(reranker, queries: list[str], candidates: list[list[str]], text_of, batch_size: int = 64,
                     precision: str = "fp32", progress: bool = True) -> list[list[float]]:
    """The reranker's score of every (question, candidate passage) pair, per question; ``text_of`` maps a passage id
    to its text."""
    from bgetune.search import precision_context

    pairs = [(query, text_of(pid)) for query, ids in zip(queries, candidates) for pid in ids]
    if not pairs:
        return [[] for _ in candidates]
    with precision_context(str(reranker.device), precision):
        flat = reranker.predict(pairs, batch_size=batch_size, show_progress_bar=progress,
                                convert_to_numpy=True).tolist()
    out, at = [], 0
    for ids in candidates:
        out.append([float(s) for s in flat[at:at + len(ids)]])
        at += len(ids)
    return out
