"""Near-duplicate detection for passages (merge them) and questions (keep them in one split).

Two texts are *exact* duplicates when their normalised forms match (case, width, whitespace and punctuation ignored),
and *near* duplicates when the cosine of their binary character n-gram vectors reaches a threshold. Groups are the
connected components of that relation (union-find), computed block by block over a sparse matrix, so 100k texts
fit in memory.

Example::

    groups = duplicate_groups(["高血压怎么办？", "高血压 怎么办", "胃胀怎么办"], near_threshold=None)
    groups   # [0, 0, 2]: each text's group is the index of its first member
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """NFKC, lower case, whitespace and punctuation removed: what two copies of one text still share."""
    return _NOISE.sub("", unicodedata.normalize("NFKC", text).lower())


def text_hash(text: str) -> str:
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()


class UnionFind:
    """Connected components over 0..n-1; a component's root is its smallest member."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller index is the root, so a group's representative is its first member.
            self.parent[max(ra, rb)] = min(ra, rb)


def duplicate_groups(texts: list[str], near_threshold: float | None = None, ngram: int = 2,
                     block: int = 2000, progress: bool = False) -> list[int]:
    """For each text, the index of the first text in its duplicate group (itself when it has none).

    ``near_threshold`` None: exact (normalised) duplicates only; else also pairs whose character ``ngram`` cosine
    is at least the threshold.
    """
    union = UnionFind(len(texts))
    first_by_hash: dict[str, int] = {}
    for i, text in enumerate(texts):
        key = normalise(text)
        if not key:
            continue   # punctuation only: nothing to compare, never a duplicate of anything
        if key in first_by_hash:
            union.union(first_by_hash[key], i)
        else:
            first_by_hash[key] = i
    if near_threshold is not None and len(texts) > 1:
        for a, b in similar_pairs([normalise(t) for t in texts], near_threshold, ngram, block, progress):
            union.union(a, b)
    return [union.find(i) for i in range(len(texts))]


def similar_pairs(texts: list[str], threshold: float, ngram: int = 2, block: int = 2000,
                  progress: bool = False) -> list[tuple[int, int]]:
    """Index pairs (a < b) whose binary character n-gram cosine is >= threshold (scikit-learn vectors)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize
    from tqdm.auto import tqdm

    # Texts shorter than the n-gram have no vector (all zeros): only exact matching can group them.
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(ngram, ngram), binary=True, lowercase=False)
    try:
        matrix = normalize(vectorizer.fit_transform(texts).astype(np.float32))
    except ValueError:   # no text as long as one n-gram
        return []
    transposed = matrix.T.tocsr()
    # Keep a block's similarity matrix to ~20M entries whatever the corpus size.
    block = max(64, min(block, 20_000_000 // max(matrix.shape[0], 1)))
    pairs: list[tuple[int, int]] = []
    starts = range(0, matrix.shape[0], block)
    for start in tqdm(starts, desc="near-duplicates", disable=not progress):
        sims = (matrix[start:start + block] @ transposed).tocoo()
        keep = (sims.data >= threshold - 1e-6) & (sims.row + start < sims.col)
        pairs.extend(zip((sims.row[keep] + start).tolist(), sims.col[keep].tolist()))
    return pairs
