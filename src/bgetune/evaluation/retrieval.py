"""Rank the whole corpus for each query: dense (faiss, exact; on the GPU when there is one) or BM25 over jieba
tokens (bm25s).

Equal scores are ordered by corpus position, so a ranking (and every metric from it) is the same on every run and
machine whatever order the index returned tied passages in.

Example::

    ranked = dense_rankings(model, texts, ids, queries, k=100, instruction="为这个句子生成表示以用于检索相关文章：")
    ranked.ids[0], ranked.scores[0]          # query 0's top passage ids and scores, best first
    rankings = bm25_rankings(texts, ids, queries, k=100)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bgetune.lexical import BM25Index
from bgetune.search import encode, top_k

SCORE_DECIMALS = 6   # scores equal to this many decimals are ties (float noise is not a preference)


@dataclass
class DenseRanking:
    ids: list[list[str]]
    scores: list[list[float]]
    query_vectors: np.ndarray
    passage_vectors: np.ndarray


def order_ties(indices, scores) -> list[int]:
    """Indices sorted by score (descending), ties by index (ascending)."""
    pairs = [(round(float(s), SCORE_DECIMALS), int(i)) for i, s in zip(indices, scores) if int(i) >= 0]
    return [i for _, i in sorted(pairs, key=lambda p: (-p[0], p[1]))]


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True, passage_vectors=None,
                   device: str = "cpu", precision: str = "fp32") -> DenseRanking:
    """Top-k passage ids and scores per query, plus the query and passage vectors (pair metrics, plots)."""
    if passage_vectors is None:
        passage_vectors = encode(model, passage_texts, batch_size, progress=progress, kind="document",
                                 precision=precision)
    query_vectors = encode(model, queries, batch_size, instruction, progress, kind="query", precision=precision)
    scores, indices = top_k(query_vectors, passage_vectors, k, device=device)
    ids, ranked_scores = [], []
    for row, row_scores in zip(indices, scores):
        score_of = {int(i): float(s) for i, s in zip(row, row_scores)}
        order = order_ties(row, row_scores)
        ids.append([passage_ids[i] for i in order])
        ranked_scores.append([score_of[i] for i in order])
    return DenseRanking(ids, ranked_scores, query_vectors, passage_vectors)


def bm25_rankings(passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                  with_scores: bool = False):
    indices, scores = BM25Index(passage_texts).search(queries, k)
    ids, ranked_scores = [], []
    for row, row_scores in zip(indices, scores):
        score_of = dict(zip(row, row_scores))
        order = order_ties(row, row_scores)
        ids.append([passage_ids[i] for i in order])
        ranked_scores.append([float(score_of[i]) for i in order])
    return (ids, ranked_scores) if with_scores else ids
