"""Rank the whole corpus for each query: dense (faiss, exact) or BM25 over jieba tokens (bm25s).

Example::

    rankings = dense_rankings(model, passages, queries, k=100, instruction="")
    rankings = bm25_rankings(passages, queries, k=100)
"""
from __future__ import annotations

import numpy as np

from bgetune.lexical import BM25Index
from bgetune.search import encode, top_k


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True
                   ) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Top-k passage ids per query, plus the query and passage vectors (for pair metrics and plots)."""
    passage_vectors = encode(model, passage_texts, batch_size, progress=progress)
    query_vectors = encode(model, queries, batch_size, instruction, progress)
    _, indices = top_k(query_vectors, passage_vectors, k)
    return [[passage_ids[i] for i in row if i >= 0] for row in indices], query_vectors, passage_vectors


def bm25_rankings(passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int) -> list[list[str]]:
    indices, _ = BM25Index(passage_texts).search(queries, k)
    return [[passage_ids[i] for i in row] for row in indices]
