"""Rank the whole corpus for each query: dense (faiss, exact; on the GPU when there is one) or BM25 (``lexical``'s
tokens, k1 and b; bm25s).

Equal scores are ordered by corpus position, so a ranking (and every metric from it) is the same on every run and
machine whatever order the index returned tied passages in.

Example::

    ranked = dense_rankings(model, texts, ids, queries, k=100, instruction="为这个句子生成表示以用于检索相关文章：")
    ranked.ids[0], ranked.scores[0]          # query 0's top passage ids and scores, best first
    rankings = bm25_rankings(texts, ids, queries, k=100, lexical=params.lexical)
    ranked = dense_rankings(model, texts, ids, queries, k=100, windows=(80, 40), window_weight=0.5)  # eval.windows
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bgetune.lexical import BM25Index
from bgetune.search import encode, top_k

SCORE_DECIMALS = 6   # scores equal to this many decimals are ties (float noise is not a preference)
WINDOW_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))   # eval.windows.tune's grid


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


def encode_windows(model, texts: list[str], windows: tuple[int, int], batch_size: int = 32, precision: str = "fp32",
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The vectors of ``texts``' windows (``windows`` = (max_chars, overlap_chars)) and each window's passage index."""
    texts, owners = passage_windows(texts, *windows)
    return encode(model, texts, batch_size, progress=progress, kind="document", precision=precision), owners


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


@dataclass
class WindowCandidates:
    """Per query: candidate passages (indices, ascending) with their own vector's and their best vector's cosine."""
    indices: list[np.ndarray]
    own: list[np.ndarray]
    best: list[np.ndarray]


def window_candidates(query_vectors: np.ndarray, passage_vectors: np.ndarray, window_vectors: np.ndarray,
                      owners: np.ndarray, pool: int, device: str = "cpu") -> WindowCandidates:
    """Each query's top ``pool`` passages by their own vector and top ``pool`` by their best vector (their own or
    one of their windows'), each then scored exactly both ways. A passage in neither list is not ranked: like the
    hybrid's fusion pool, a mix of the two scores is ranked within the two lists."""
    _, own_top = top_k(query_vectors, passage_vectors, pool, device=device)
    everything = np.concatenate([passage_vectors, window_vectors])
    best_top, _ = best_vector_top_k(query_vectors, everything,
                                    np.concatenate([np.arange(len(passage_vectors)), owners]), pool, device)
    by_owner = np.argsort(owners, kind="stable")
    starts = np.searchsorted(owners[by_owner], np.arange(len(passage_vectors) + 1))
    indices, own, best = [], [], []
    for query, top, extra in zip(query_vectors, own_top, best_top):
        candidates = np.unique(np.concatenate([top[top >= 0], np.asarray(extra, dtype=np.int64)]))
        own_cosines = passage_vectors[candidates] @ query
        best_cosines = own_cosines.copy()
        for j, passage in enumerate(candidates):
            windows = by_owner[starts[passage]:starts[passage + 1]]
            if len(windows):
                best_cosines[j] = max(best_cosines[j], float((window_vectors[windows] @ query).max()))
        indices.append(candidates)
        own.append(own_cosines)
        best.append(best_cosines)
    return WindowCandidates(indices, own, best)


def mixed_ranking(candidates: WindowCandidates, passage_ids: list[str], weight: float, k: int
                  ) -> tuple[list[list[str]], list[list[float]]]:
    """Each query's top-k passage ids and scores by (1 − weight) × own cosine + weight × best cosine."""
    ids, ranked_scores = [], []
    for indices, own, best in zip(candidates.indices, candidates.own, candidates.best):
        mixed = (1.0 - weight) * own + weight * best
        score_of = dict(zip(indices.tolist(), mixed.tolist()))
        order = order_ties(indices, mixed)[:k]
        ids.append([passage_ids[i] for i in order])
        ranked_scores.append([score_of[i] for i in order])
    return ids, ranked_scores


def tune_window_weight(candidates: WindowCandidates, passage_ids: list[str], relevant: list[set[str]]
                       ) -> tuple[float, list[dict]]:
    """The window weight maximising NDCG@10 over ``WINDOW_WEIGHTS`` (on val); ties: the smaller weight (closer to
    one vector per passage). Returns the weight and every trial."""
    from bgetune.evaluation.metrics import ranking_metrics

    trials = [{"weight": weight, "val_ndcg@10": ranking_metrics(mixed_ranking(candidates, passage_ids, weight, 10)[0],
                                                                relevant, [10])["ndcg@10"]}
              for weight in WINDOW_WEIGHTS]
    best = max(trials, key=lambda t: (t["val_ndcg@10"], -t["weight"]))
    return best["weight"], trials


def dense_rankings(model, passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                   instruction: str = "", batch_size: int = 32, progress: bool = True, passage_vectors=None,
                   device: str = "cpu", precision: str = "fp32", windows: tuple[int, int] | None = None,
                   window_vectors: tuple[np.ndarray, np.ndarray] | None = None,
                   window_weight: float = 1.0, query_vectors: np.ndarray | None = None) -> DenseRanking:
    """Top-k passage ids and scores per query, plus the query and passage vectors (pair metrics, plots).

    ``windows`` = (max_chars, overlap_chars) turns on small-to-big scoring (``eval.windows``): a passage scores
    (1 − ``window_weight``) × its own vector's cosine + ``window_weight`` × its best vector's, itself or one of its
    sentence windows (``passage_windows``); ``window_vectors`` = (vectors, owners) reuses windows already encoded
    for the same passages. ``passage_vectors`` / ``query_vectors`` given are ranked as they are (not encoded)."""
    if passage_vectors is None:
        passage_vectors = encode(model, passage_texts, batch_size, progress=progress, kind="document",
                                 precision=precision)
    if query_vectors is None:
        query_vectors = encode(model, queries, batch_size, instruction, progress, kind="query", precision=precision)
    if windows and windows[0]:
        if window_vectors is None:
            window_vectors = encode_windows(model, passage_texts, windows, batch_size, precision, progress)
        vectors, owners = window_vectors
        candidates = window_candidates(query_vectors, passage_vectors, vectors, owners, k, device)
        ids, ranked_scores = mixed_ranking(candidates, passage_ids, window_weight, k)
        return DenseRanking(ids, ranked_scores, query_vectors, passage_vectors, vectors, owners)
    scores, indices = top_k(query_vectors, passage_vectors, k, device=device)
    ids, ranked_scores = [], []
    for row, row_scores in zip(indices, scores):
        score_of = {int(i): float(s) for i, s in zip(row, row_scores)}
        order = order_ties(row, row_scores)
        ids.append([passage_ids[i] for i in order])
        ranked_scores.append([score_of[i] for i in order])
    return DenseRanking(ids, ranked_scores, query_vectors, passage_vectors)


def bm25_rankings(passage_texts: list[str], passage_ids: list[str], queries: list[str], k: int,
                  with_scores: bool = False, *, lexical, term_weights: dict[str, float] | None = None):
    indices, scores = BM25Index(passage_texts, lexical, term_weights).search(queries, k)
    ids, ranked_scores = [], []
    for row, row_scores in zip(indices, scores):
        score_of = dict(zip(row, row_scores))
        order = order_ties(row, row_scores)
        ids.append([passage_ids[i] for i in order])
        ranked_scores.append([float(score_of[i]) for i in order])
    return (ids, ranked_scores) if with_scores else ids
