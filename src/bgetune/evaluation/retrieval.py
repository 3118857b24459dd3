"""Rank the whole corpus for each query: dense (faiss, exact; on the GPU when there is one) or BM25 over jieba
tokens (bm25s).

Equal scores are ordered by corpus position, so a ranking (and every metric from it) is the same on every run and
machine whatever order the index returned tied passages in.

Example::

    ranked = dense_rankings(model, texts, ids, queries, k=100, instruction="为这个句子生成表示以用于检索相关文章：")
    ranked.ids[0], ranked.scores[0]          # query 0's top passage ids and scores, best first
    rankings = bm25_rankings(texts, ids, queries, k=100)
    ranked = dense_rankings(model, texts, ids, queries, k=100, windows=(120, 60))   # small-to-big (eval.windows)
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
    passage_vectors: np.ndarray          # one per passage (the whole passage), windows or not
    window_vectors: np.ndarray | None = None
    window_owners: np.ndarray | None = None   # the passage index of each window vector


def order_ties(indices, scores) -> list[int]:
    """Indices sorted by score (descending), ties by index (ascending)."""
    pairs = [(round(float(s), SCORE_DECIMALS), int(i)) for i, s in zip(indices, scores) if int(i) >= 0]
    return [i for _, i in sorted(pairs, key=lambda p: (-p[0], p[1]))]


def passage_windows(texts: list[str], max_chars: int, overlap_chars: int) -> tuple[list[str], np.ndarray]:
    """Windows of whole sentences (each up to ``max_chars``, overlapping by up to ``overlap_chars``) of every passage
    longer than ``max_chars``, and the index of the passage each comes from. A shorter passage has none: its own
    vector already covers it."""
    from bgetune.chunking import chunk_spans

    windows, owners = [], []
    for index, text in enumerate(texts):
        if len(text) <= max_chars:
            continue
        spans = chunk_spans(text, max_chars, 0, overlap_chars)
        if len(spans) < 2:
            continue
        for start, end in spans:
            windows.append(text[start:end])
            owners.append(index)
    return windows, np.asarray(owners, dtype=np.int64)


def best_vector_top_k(queries: np.ndarray, vectors: np.ndarray, owners: np.ndarray, k: int, device: str = "cpu"
                      ) -> tuple[list[list[int]], list[list[float]]]:
    """Each query's top-k owners (passages) by their best vector's score, best first, ties by owner index.

    Exact: the search returns the top k × (most vectors one owner has) vectors, which hold at least k distinct
    owners, and an owner's best score is that of its first vector in the list (faiss-gpu returns at most 2,048
    vectors a query: past that, k × the most windows a passage has, a query may get fewer than k passages)."""
    per_owner = int(np.bincount(owners).max()) if len(owners) else 1
    scores, indices = top_k(queries, vectors, k * per_owner, device=device)
    return best_per_owner(indices, scores, owners, k)


def best_per_owner(indices, scores, owners: np.ndarray, k: int) -> tuple[list[list[int]], list[list[float]]]:
    """Rows of (vector or window index, score), best first, → each row's top-k owners by their best score."""
    ranked, ranked_scores = [], []
    for row, row_scores in zip(indices, scores):
        best: dict[int, float] = {}
        for i, score in zip(row, row_scores):
            if int(i) >= 0:
                owner = int(owners[int(i)])
                best[owner] = max(best.get(owner, float("-inf")), float(score))
        order = order_ties(list(best), list(best.values()))[:k]
        ranked.append(order)
        ranked_scores.append([best[i] for i in order])
    return ranked, ranked_scores


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True, passage_vectors=None,
                   device: str = "cpu", precision: str = "fp32", windows: tuple[int, int] | None = None,
                   window_vectors: tuple[np.ndarray, np.ndarray] | None = None) -> DenseRanking:
    """Top-k passage ids and scores per query, plus the query and passage vectors (pair metrics, plots).

    ``windows`` = (max_chars, overlap_chars) turns on small-to-big scoring (``eval.windows``): a passage scores by
    its best vector, itself or one of its sentence windows (``passage_windows``); ``window_vectors`` = (vectors,
    owners) reuses windows already encoded for the same passages."""
    if passage_vectors is None:
        passage_vectors = encode(model, passage_texts, batch_size, progress=progress, kind="document",
                                 precision=precision)
    query_vectors = encode(model, queries, batch_size, instruction, progress, kind="query", precision=precision)
    if windows and windows[0]:
        if window_vectors is None:
            texts, owners = passage_windows(passage_texts, *windows)
            window_vectors = (encode(model, texts, batch_size, progress=progress, kind="document",
                                     precision=precision), owners)
        vectors, owners = window_vectors
        order, ranked_scores = best_vector_top_k(
            query_vectors, np.concatenate([passage_vectors, vectors]),
            np.concatenate([np.arange(len(passage_vectors)), owners]), k, device)
        return DenseRanking([[passage_ids[i] for i in row] for row in order], ranked_scores, query_vectors,
                            passage_vectors, vectors, owners)
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
