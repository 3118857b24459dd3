"""Lexical retrieval shared by mining and evaluation: BM25 over jieba tokens (bm25s does the scoring).

Example::

    index = BM25Index(["高血压患者的饮食", "糖尿病的治疗"])
    indices, scores = index.search(["高血压 饮食"], k=1)   # [[0]], [[score]]
"""
from __future__ import annotations

from bgetune.text import content_tokens


class BM25Index:
    """BM25 (bm25s, Lucene variant) over jieba search-mode tokens."""

    def __init__(self, texts: list[str]):
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)   # "Building index from tokens" on every index

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

    def scores(self, query: str, indices: list[int]) -> list[float]:
        """BM25 scores of one query against the given passages (0 for a query with no corpus word)."""
        tokens = [t for t in content_tokens(query) if t in self.retriever.vocab_dict]
        if not tokens:
            return [0.0] * len(indices)
        scores = self.retriever.get_scores(tokens)
        return [float(scores[i]) for i in indices]
