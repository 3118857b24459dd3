"""Cross-domain negatives: the passages most similar to the query among those of *another* sub-domain.

The sub-domain is the passage's ``domain`` field where the data has one (e.g. meddialog's department), else a
k-means cluster of the passage embeddings (faiss, seeded).

Example::

    domains = passage_domains(passages, passage_vectors, clusters=8, seed=42)
    candidates = cross_domain_candidates(query_vectors, passage_vectors, domains, positive_domains, 100)
"""
from __future__ import annotations

import numpy as np


def passage_domains(domain_labels: list[str | None], passage_vectors: np.ndarray, clusters: int, seed: int
                    ) -> tuple[list[str], str]:
    """Per-passage sub-domain labels and where they came from ("field" or "kmeans")."""
    if all(label for label in domain_labels) and len(set(domain_labels)) > 1:
        return list(domain_labels), "field"
    import faiss

    k = max(2, min(clusters, len(passage_vectors) // 2))
    kmeans = faiss.Kmeans(passage_vectors.shape[1], k, niter=20, seed=seed, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(passage_vectors, dtype=np.float32))
    _, assignment = kmeans.index.search(np.ascontiguousarray(passage_vectors, dtype=np.float32), 1)
    return [f"cluster{int(c)}" for c in assignment[:, 0]], "kmeans"


def cross_domain_candidates(query_vectors: np.ndarray, passage_vectors: np.ndarray, domains: list[str],
                            positive_domains: list[set[str]], max_candidates: int, batch: int = 1024
                            ) -> list[list[tuple[int, float, int]]]:
    labels = np.array(domains)
    out = []
    for start in range(0, len(query_vectors), batch):
        scores = query_vectors[start:start + batch] @ passage_vectors.T
        for row, own in zip(scores, positive_domains[start:start + batch]):
            allowed = np.flatnonzero(~np.isin(labels, list(own)))
            if allowed.size == 0:
                out.append([])
                continue
            k = min(max_candidates, allowed.size)
            best = allowed[np.argpartition(-row[allowed], k - 1)[:k]]
            best = best[np.argsort(-row[best], kind="stable")]
            out.append([(int(i), float(row[i]), r) for r, i in enumerate(best, start=1)])
    return out
