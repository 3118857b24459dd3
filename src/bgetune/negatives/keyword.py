"""Keyword negatives: passages whose extracted keywords (jieba TF-IDF or TextRank) overlap the query's.

Score = the fraction of the query's keywords found among the passage's keywords; passages with no overlap are not
candidates.

Example::

    candidates = keyword_candidates(passage_texts, queries, top_keywords=10, method="tfidf", max_candidates=100)
"""
from __future__ import annotations


def extract_keywords(text: str, top_k: int, method: str = "tfidf") -> list[str]:
    from bgetune.text import _jieba

    _jieba()
    import jieba.analyse

    extractor = jieba.analyse.textrank if method == "textrank" else jieba.analyse.extract_tags
    return [w.lower() for w in extractor(text, topK=top_k)]


def keyword_candidates(passage_texts: list[str], queries: list[str], top_keywords: int = 10, method: str = "tfidf",
                       max_candidates: int = 100, batch: int = 256) -> list[list[tuple[int, float, int]]]:
    from functools import partial

    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    from bgetune.parallel import map_texts
    from bgetune.text import as_given

    # Keyword extraction is jieba's segmentation again: over worker processes for a large corpus.
    passage_keywords = map_texts(partial(extract_keywords, top_k=top_keywords * 2, method=method), passage_texts,
                                 "keywords of the passages")
    query_keywords = [set(words) for words in map_texts(partial(extract_keywords, top_k=top_keywords, method=method),
                                                        queries, "keywords of the queries")]
    # Keyword sets as binary sparse rows: a batch of queries' overlap with every passage is one sparse product
    # (a Python loop over each keyword's passages took minutes at 80k passages).
    vectorizer = CountVectorizer(analyzer=as_given, binary=True, dtype=np.int32)
    try:
        passages_t = vectorizer.fit_transform(passage_keywords).T.tocsr()
    except ValueError:   # no passage has a keyword: nothing overlaps
        return [[] for _ in queries]
    out = []
    for start in range(0, len(queries), batch):
        keyword_sets = query_keywords[start:start + batch]
        overlap = (vectorizer.transform(keyword_sets) @ passages_t).tocsr()
        for row, words in enumerate(keyword_sets):
            counts = overlap.data[overlap.indptr[row]:overlap.indptr[row + 1]]
            found = overlap.indices[overlap.indptr[row]:overlap.indptr[row + 1]]
            # most shared keywords first, ties by passage index
            ranked = np.lexsort((found, -counts))[:max_candidates]
            out.append([(int(found[k]), int(counts[k]) / len(words), r) for r, k in enumerate(ranked, start=1)])
    return out
