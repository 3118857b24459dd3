"""BM25 negatives: passages that share the query's words (``mining.bm25``'s tokens, bm25s scoring) in a rank range.

Example::

    candidates = bm25_candidates(passage_texts, queries, rank_min=2, rank_max=100, lexical=params.mining.bm25.lexical())
"""
from __future__ import annotations

from bgetune.lexical import BM25Index


def bm25_candidates(passage_texts: list[str], queries: list[str], rank_min: int, rank_max: int, *, lexical
                    ) -> list[list[tuple[int, float, int]]]:
    indices, scores = BM25Index(passage_texts, lexical).search(queries, rank_max)
    return [[(i, s, r) for r, (i, s) in enumerate(zip(row, row_scores), start=1) if rank_min <= r and s > 0]
            for row, row_scores in zip(indices, scores)]
