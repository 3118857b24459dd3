"""Dense negatives: passages the base model ranks between ``rank_min`` and ``rank_max`` for the query (1-based).

Example::

    candidates = dense_candidates(query_vecs, passage_vecs, rank_min=2, rank_max=100)
    candidates[0]   # [(passage_index, score, rank), ...] for query 0, best first
"""
from __future__ import annotations

import numpy as np

from bgetune.search import top_k


def dense_candidates(query_vectors: np.ndarray, passage_vectors: np.ndarray, rank_min: int, rank_max: int,
                     kind: str = "flat", device: str = "cpu") -> list[list[tuple[int, float, int]]]:
    scores, indices = top_k(query_vectors, passage_vectors, rank_max, kind, device)
    out = []
    for row_scores, row_indices in zip(scores, indices):
        out.append([(int(i), float(s), r) for r, (s, i) in enumerate(zip(row_scores, row_indices), start=1)
                    if rank_min <= r <= rank_max and i >= 0])
    return out
