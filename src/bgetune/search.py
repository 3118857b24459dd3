"""Dense encoding and exact nearest-neighbour search (faiss inner product over L2-normalised vectors).

Example::

    passages = encode(model, texts, batch_size=32)
    queries = encode(model, questions, batch_size=32, prompt=instruction)
    scores, indices = top_k(queries, passages, k=100)
"""
from __future__ import annotations

import numpy as np


def encode(model, texts: list[str], batch_size: int = 32, prompt: str = "", progress: bool = True) -> np.ndarray:
    """L2-normalised float32 embeddings; ``prompt`` is prepended to every text (the query instruction)."""
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    vectors = model.encode(list(texts), batch_size=batch_size, prompt=prompt or None, convert_to_numpy=True,
                           normalize_embeddings=True, show_progress_bar=progress)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def build_index(passages: np.ndarray, kind: str = "flat", hnsw_m: int = 32):
    """A faiss inner-product index: "flat" (exact) or "hnsw" (approximate, for large corpora)."""
    import faiss

    vectors = np.ascontiguousarray(passages, dtype=np.float32)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    elif kind == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(vectors)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, index.ntotal)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(64, 2 * k)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def top_k(queries: np.ndarray, passages: np.ndarray, k: int, kind: str = "flat") -> tuple[np.ndarray, np.ndarray]:
    """Inner-product search: (scores, indices), each (n_queries, k), best first; exact unless kind="hnsw"."""
    return search(build_index(passages, kind), queries, k)


def recall_against_exact(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k indices that the approximate search also returned."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approximate, exact)]
    return float(np.mean(hits)) if hits else 1.0
