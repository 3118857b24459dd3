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


def top_k(queries: np.ndarray, passages: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search: (scores, indices), each (n_queries, k), best first."""
    import faiss

    k = min(k, passages.shape[0])
    index = faiss.IndexFlatIP(passages.shape[1])
    index.add(np.ascontiguousarray(passages, dtype=np.float32))
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, indices
