"""Rank the whole corpus for each query: dense (faiss, exact) or BM25 over jieba tokens (bm25s).

Equal scores are ordered by corpus position, so a ranking (and every metric from it) is the same on every run and
machine whatever order the index returned tied passages in.

Example::

    rankings, query_vectors, passage_vectors = dense_rankings(model, texts, ids, queries, k=100)
    rankings = bm25_rankings(texts, ids, queries, k=100)
"""
from __future__ import annotations

import numpy as np

from bgetune.lexical import BM25Index
from bgetune.search import encode, top_k

SCORE_DECIMALS = 6   # scores equal to this many decimals are ties (float noise is not a preference)


def order_ties(indices, scores) -> list[int]:
    """Indices sorted by score (descending), ties by index (ascending)."""
    pairs = [(round(float(s), SCORE_DECIMALS), int(i)) for i, s in zip(indices, scores) if int(i) >= 0]
    return [i for _, i in sorted(pairs, key=lambda p: (-p[0], p[1]))]


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True, passage_vectors=None
                   ) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Top-k passage ids per query, plus the query and passage vectors (for pair metrics and plots)."""
    if passage_vectors is None:
        passage_vectors = encode(model, passage_texts, batch_size, progress=progress)
    query_vectors = encode(model, queries, batch_size, instruction, progress)
    scores, indices = top_k(query_vectors, passage_vectors, k)
    rankings = [[passage_ids[i] for i in order_ties(row, row_scores)] for row, row_scores in zip(indices, scores)]
    return rankings, query_vectors, passage_vectors


def bm25_rankings(passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int) -> list[list[str]]:
    indices, scores = BM25Index(passage_texts).search(queries, k)
    return [[passage_ids[i] for i in order_ties(row, row_scores)] for row, row_scores in zip(indices, scores)]
