"""Rank the whole corpus for each query: dense (faiss, exact) or BM25 over jieba tokens (bm25s).

Example::

    rankings = dense_rankings(model, passages, queries, k=100, instruction="")
    rankings = bm25_rankings(passages, queries, k=100)
"""
from __future__ import annotations

import numpy as np

from bgetune.search import encode, top_k
from bgetune.text import content_tokens


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True
                   ) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Top-k passage ids per query, plus the query and passage vectors (for pair metrics and plots)."""
    passage_vectors = encode(model, passage_texts, batch_size, progress=progress)
    query_vectors = encode(model, queries, batch_size, instruction, progress)
    _, indices = top_k(query_vectors, passage_vectors, k)
    return [[passage_ids[i] for i in row if i >= 0] for row in indices], query_vectors, passage_vectors


class BM25Index:
    """BM25 (bm25s, Lucene variant) over jieba search-mode tokens.

    Example::

        index = BM25Index(["高血压患者的饮食", "糖尿病的治疗"])
        index.search(["高血压 饮食"], k=1)   # ([[0]], [[score]])
    """

    def __init__(self, texts: list[str]):
        import bm25s

        self.size = len(texts)
        self.retriever = bm25s.BM25()
        self.retriever.index([content_tokens(t) or ["<empty>"] for t in texts], show_progress=False)

    def search(self, queries: list[str], k: int) -> tuple[list[list[int]], list[list[float]]]:
        k = min(k, self.size)
        tokens = [[t for t in content_tokens(q) if t in self.retriever.vocab_dict] for q in queries]
        # A query none of whose words occurs in the corpus scores 0 everywhere: corpus order, honestly unranked.
        indices = [list(range(k)) for _ in queries]
        scores = [[0.0] * k for _ in queries]
        searchable = [i for i, t in enumerate(tokens) if t]
        if searchable:
            docs, doc_scores = self.retriever.retrieve([tokens[i] for i in searchable], k=k, show_progress=False)
            for row, i in enumerate(searchable):
                indices[i] = [int(d) for d in docs[row]]
                scores[i] = [float(s) for s in doc_scores[row]]
        return indices, scores


def bm25_rankings(passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int) -> list[list[str]]:
    indices, _ = BM25Index(passage_texts).search(queries, k)
    return [[passage_ids[i] for i in row] for row in indices]
