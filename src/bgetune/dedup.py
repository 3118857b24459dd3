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
    keys = [normalise(text) for text in texts]   # once: the exact and the near search both compare these
    first_by_hash: dict[str, int] = {}
    for i, key in enumerate(keys):
        if not key:
            continue   # punctuation only: nothing to compare, never a duplicate of anything
        if key in first_by_hash:
            union.union(first_by_hash[key], i)
        else:
            first_by_hash[key] = i
    if near_threshold is not None and len(texts) > 1:
        for a, b in similar_pairs(keys, near_threshold, ngram, block, progress):
            union.union(a, b)
    return [union.find(i) for i in range(len(texts))]


def similar_pairs(texts: list[str], threshold: float, ngram: int = 2, block: int = 2000,
                  progress: bool = False) -> list[tuple[int, int]]:
    """Index pairs (a < b) whose binary character n-gram cosine is >= threshold, found exactly.

    Hand-written because scikit-learn has no thresholded all-pairs search and comparing every text with every other
    grows with the square of the corpus (73k passages: 4 minutes on 2 cores, bench/corpus_scale.py). This is
    the *prefix filter* of all-pairs similarity search (Bayardo, Ma & Srikant, WWW 2007): order the n-grams rarest
    first; a pair with cosine >= t shares at least t²·|A| n-grams of either text A (the other text's length is
    within t² of A's), so the first |A| − ⌈t²·|A|⌉ + 1 n-grams of each text in that order must meet. Only pairs
    whose short prefixes of rare n-grams meet are verified, by their exact overlap / sqrt(|A|·|B|): the same pairs
    as comparing all of them, found in a fraction of the work (tests/test_dedup.py checks both).
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from tqdm.auto import tqdm

    # Texts shorter than the n-gram have no n-grams: only exact matching can group them.
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(ngram, ngram), binary=True, lowercase=False,
                                 dtype=np.int32)
    try:
        grams = vectorizer.fit_transform(texts).tocsr()
    except ValueError:   # no text as long as one n-gram
        return []
    # Columns renumbered rarest first (ties by column: deterministic), so each row's first entries are its rarest.
    frequency = np.bincount(grams.indices, minlength=grams.shape[1])
    grams = grams[:, np.lexsort((np.arange(grams.shape[1]), frequency))].tocsr()
    grams.sort_indices()
    sizes = np.diff(grams.indptr)
    tolerance = threshold - 1e-6   # the float32 tolerance of the all-pairs version this replaced
    squared = max(tolerance, 0.0) ** 2
    # floor (not ceil) of t²·|A|: a prefix one n-gram longer at a rounding edge only adds candidates, never loses one
    prefix = np.minimum(sizes, sizes - np.floor(squared * sizes - 1e-9).astype(np.int64) + 1)
    position = np.arange(grams.nnz) - np.repeat(grams.indptr[:-1], sizes)
    in_prefix = position < np.repeat(prefix, sizes)
    prefixes = _rows_from_mask(grams, in_prefix)
    prefixes_t = prefixes.T.tocsr()
    # Keep a block's candidate matrix bounded whatever the corpus size (at least 64 rows, or the block asked for).
    block = min(block, max(64, 20_000_000 // max(grams.shape[0], 1)))
    pairs: list[tuple[int, int]] = []
    for start in tqdm(range(0, grams.shape[0], block), desc="near-duplicates", disable=not progress):
        candidates = (prefixes[start:start + block] @ prefixes_t).tocoo()
        rows, cols = candidates.row.astype(np.int64) + start, candidates.col.astype(np.int64)
        # each pair once (a < b), and only lengths that allow the threshold: |B| within [t²|A|, |A|/t²]
        keep = (rows < cols) & (sizes[cols] >= squared * sizes[rows] - 1e-9) & \
            (sizes[rows] >= squared * sizes[cols] - 1e-9)
        rows, cols = rows[keep], cols[keep]
        order = np.lexsort((cols, rows))   # pairs in (a, b) order, the same list whatever the block size
        rows, cols = rows[order], cols[order]
        for first in range(0, len(rows), 200_000):
            a, b = rows[first:first + 200_000], cols[first:first + 200_000]
            overlap = np.asarray(grams[a].multiply(grams[b]).sum(axis=1)).ravel()
            cosine = overlap / np.sqrt(sizes[a].astype(np.float64) * sizes[b])
            hit = cosine >= tolerance
            pairs.extend(zip(a[hit].tolist(), b[hit].tolist()))
    return pairs


def _rows_from_mask(matrix, keep: np.ndarray):
    """The CSR ``matrix`` with only the entries where ``keep`` is true (same shape)."""
    from scipy.sparse import csr_matrix

    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=matrix.shape[0]))])
    return csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)
