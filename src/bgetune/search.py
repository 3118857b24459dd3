"""Dense encoding and nearest-neighbour search (faiss inner product over L2-normalised vectors).

Queries and passages are encoded as what they are (``encode_query`` / ``encode_document``), so each gets its own
length limit; on a GPU encoding runs under autocast in the stage's precision (bf16 or fp16), on a CPU in fp32.
Search runs on the GPU when faiss-gpu and a GPU are there (``pip install 'bgetune[gpu]'``), on the CPU otherwise.

Example::

    passages = encode(model, texts, batch_size=32, kind="document")
    queries = encode(model, questions, batch_size=32, prompt=instruction, kind="query")
    scores, indices = top_k(queries, passages, k=100)
"""
from __future__ import annotations

import contextlib
import logging

import numpy as np

log = logging.getLogger("bgetune")


def precision_context(device: str, precision: str):
    """Autocast for encoding in bf16/fp16 on a GPU; nothing on a CPU (fp32)."""
    if precision == "fp32" or not str(device).startswith("cuda"):
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def encode(model, texts: list[str], batch_size: int = 32, prompt: str = "", progress: bool = True,
           kind: str = "document", precision: str = "fp32") -> np.ndarray:
    """L2-normalised float32 embeddings. ``kind``: "query" (query length, ``prompt`` = the instruction),
    "document" (passage length) or "text" (the model's default length)."""
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    # An explicit prompt ("" included): the stage decides the instruction, never a prompt saved with the model.
    options = dict(batch_size=batch_size, prompt=prompt if kind == "query" else "", convert_to_numpy=True,
                   normalize_embeddings=True, show_progress_bar=progress)
    with precision_context(str(model.device), precision):
        if kind == "query":
            vectors = model.encode_query(list(texts), **options)
        elif kind == "document":
            vectors = model.encode_document(list(texts), **options)
        else:
            vectors = model.encode(list(texts), **options)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def faiss_module():
    try:
        import faiss
    except ImportError:
        raise ImportError("faiss is not installed: pip install 'bgetune[cpu]' (or 'bgetune[gpu]' for faiss-gpu)") \
            from None
    return faiss


def gpu_search_available() -> bool:
    """faiss was built with GPU support and sees a GPU."""
    faiss = faiss_module()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def build_index(passages: np.ndarray, kind: str = "flat", hnsw_m: int = 32, device: str = "cpu"):
    """A faiss inner-product index: "flat" (exact) or "hnsw" (approximate, CPU only). On a CUDA device with
    faiss-gpu the exact index lives on the GPU (it is faster there than HNSW on a CPU, and exact)."""
    faiss = faiss_module()
    vectors = np.ascontiguousarray(passages, dtype=np.float32)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(vectors.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
    elif kind == "flat":
        index = faiss.IndexFlatIP(vectors.shape[1])
        if str(device).startswith("cuda") and gpu_search_available():
            gpu = int(str(device).split(":")[1]) if ":" in str(device) else 0
            index = faiss.index_cpu_to_gpu(_gpu_resources(), gpu, index)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.add(vectors)
    return index


_RESOURCES = None


def _gpu_resources():
    global _RESOURCES
    if _RESOURCES is None:
        _RESOURCES = faiss_module().StandardGpuResources()
    return _RESOURCES


def index_location(index) -> str:
    return "gpu" if type(index).__name__.startswith("Gpu") else "cpu"


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, index.ntotal)
    if hasattr(index, "hnsw"):
        index.hnsw.efSearch = max(64, 2 * k)
    if index_location(index) == "gpu":
        k = min(k, 2048)   # faiss-gpu's limit for k
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def top_k(queries: np.ndarray, passages: np.ndarray, k: int, kind: str = "flat", device: str = "cpu"
          ) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product search: (scores, indices), each (n_queries, k), best first; exact unless kind="hnsw"."""
    return search(build_index(passages, kind, device=device), queries, k)


def recall_against_exact(approximate: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top-k indices that the approximate search also returned."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / max(len(e), 1) for a, e in zip(approximate, exact)]
    return float(np.mean(hits)) if hits else 1.0
