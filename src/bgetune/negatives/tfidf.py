"""TF-IDF negatives: cosine similarity of TF-IDF vectors over jieba words or character n-grams (scikit-learn).

Example::

    candidates = tfidf_candidates(passage_texts, queries, rank_min=2, rank_max=100, analyzer="char", ngram=(1, 2))
"""
from __future__ import annotations

import numpy as np

from bgetune.text import as_given, content_tokens_of


def tfidf_candidates(passage_texts: list[str], queries: list[str], rank_min: int, rank_max: int,
                     analyzer: str = "word", ngram: tuple[int, int] = (1, 2), batch: int = 512
                     ) -> list[list[tuple[int, float, int]]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "word":
        # The texts are segmented up front (over worker processes for a large corpus); the vectorizer takes the
        # token lists as they are.
        vectorizer = TfidfVectorizer(analyzer=as_given, sublinear_tf=True)
        passage_texts, queries = content_tokens_of(passage_texts, "passages"), content_tokens_of(queries, "queries")
    else:
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(ngram), sublinear_tf=True)
    passages = vectorizer.fit_transform(passage_texts)
    out = []
    k = min(rank_max, len(passage_texts))
    for start in range(0, len(queries), batch):
        scores = (vectorizer.transform(queries[start:start + batch]) @ passages.T).toarray()
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, candidates in zip(scores, top):
            ordered = candidates[np.argsort(-row[candidates], kind="stable")]
            out.append([(int(i), float(row[i]), r) for r, i in enumerate(ordered, start=1)
                        if r >= rank_min and row[i] > 0])
    return out
