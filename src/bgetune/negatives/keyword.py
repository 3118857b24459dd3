"""Keyword negatives: passages whose extracted keywords (jieba TF-IDF or TextRank) overlap the query's.

Score = the fraction of the query's keywords found among the passage's keywords; passages with no overlap are not
candidates.

Example::

    candidates = keyword_candidates(passage_texts, queries, top_keywords=10, method="tfidf", max_candidates=100)
"""
from __future__ import annotations

from collections import defaultdict


def extract_keywords(text: str, top_k: int, method: str = "tfidf") -> list[str]:
    from bgetune.text import _jieba

    _jieba()
    import jieba.analyse

    extractor = jieba.analyse.textrank if method == "textrank" else jieba.analyse.extract_tags
    return [w.lower() for w in extractor(text, topK=top_k)]


def keyword_candidates(passage_texts: list[str], queries: list[str], top_keywords: int = 10, method: str = "tfidf",
                       max_candidates: int = 100) -> list[list[tuple[int, float, int]]]:
    inverted: dict[str, list[int]] = defaultdict(list)
    for index, text in enumerate(passage_texts):
        for word in set(extract_keywords(text, top_keywords * 2, method)):
            inverted[word].append(index)
    out = []
    for query in queries:
        words = set(extract_keywords(query, top_keywords, method))
        overlap: dict[int, int] = defaultdict(int)
        for word in words:
            for index in inverted.get(word, ()):
                overlap[index] += 1
        ranked = sorted(overlap.items(), key=lambda item: (-item[1], item[0]))[:max_candidates]
        out.append([(i, n / len(words), r) for r, (i, n) in enumerate(ranked, start=1)])
    return out
