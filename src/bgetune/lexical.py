"""Lexical retrieval shared by mining, evaluation and qa-gen: BM25 (bm25s scores it) over the tokens and with the
k1 and b of params.yaml's ``lexical`` section.

Example::

    index = BM25Index(["高血压患者的饮食", "糖尿病的治疗"])          # lexical defaults: CJK bigrams, k1 1.2, b 0.75
    indices, scores = index.search(["高血压 饮食"], k=1)   # [[0]], [[score]]
    BM25Index(texts, LexicalParams(tokens="words"))         # jieba's search-mode words instead
    weights = term_recall_weights([("高血压 怎么办", "高血压患者的饮食")], index.tokens)   # from training pairs
    BM25Index(texts, term_weights=weights)                  # each query term's score times its weight
"""
from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

import numpy as np

from bgetune.params.modelling import LexicalParams
from bgetune.text import lexical_tokens, lexical_tokens_of


class BM25Index:
    """BM25 (bm25s, Lucene variant) over ``lexical.tokens``: CJK character bigrams or jieba words."""

    def __init__(self, texts: list[str], lexical: LexicalParams | None = None,
                 term_weights: dict[str, float] | None = None):
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)   # "Building index from tokens" on every index

        self.lexical = lexical or LexicalParams()
        self.term_weights = term_weights
        self.size = len(texts)
        self.retriever = bm25s.BM25(k1=self.lexical.k1, b=self.lexical.b)
        self.retriever.index([tokens or ["<empty>"] for tokens in lexical_tokens_of(texts, self.lexical.tokens,
                                                                                    "passages")],
                             show_progress=False)

    def tokens(self, text: str) -> list[str]:
        return lexical_tokens(text, self.lexical.tokens)

    def search(self, queries: list[str], k: int) -> tuple[list[list[int]], list[list[float]]]:
        k = min(k, self.size)
        tokens = [[t for t in query if t in self.retriever.vocab_dict]
                  for query in lexical_tokens_of(queries, self.lexical.tokens, "queries")]
        # A query none of whose words occurs in the corpus scores 0 everywhere: corpus order, honestly unranked.
        indices = [list(range(k)) for _ in queries]
        scores = [[0.0] * k for _ in queries]
        searchable = [i for i, t in enumerate(tokens) if t]
        if searchable and self.term_weights is not None:
            for i in searchable:
                indices[i], scores[i] = self._weighted_top(tokens[i], k)
        elif searchable:
            docs, doc_scores = self.retriever.retrieve([tokens[i] for i in searchable], k=k, show_progress=False)
            for row, i in enumerate(searchable):
                indices[i] = [int(d) for d in docs[row]]
                scores[i] = [float(s) for s in doc_scores[row]]
        return indices, scores

    def scores(self, query: str, indices: list[int]) -> list[float]:
        """BM25 scores of one query against the given passages (0 for a query with no corpus word)."""
        tokens = [t for t in self.tokens(query) if t in self.retriever.vocab_dict]
        if not tokens:
            return [0.0] * len(indices)
        scores = self._weighted_scores(tokens) if self.term_weights is not None else self.retriever.get_scores(tokens)
        return [float(scores[i]) for i in indices]

    def _weighted_scores(self, tokens: list[str]) -> np.ndarray:
        # Hand-written because bm25s weighs every query token 1 (its retrieve has no query-term weights): a weighted
        # query scores the sum of its terms' single-term BM25 scores, each times its weight (a repeated term counts
        # each time, as bm25s counts it). A term without a weight keeps 1.
        total = np.zeros(self.size, dtype=np.float64)
        for token, count in Counter(tokens).items():
            total += count * self.term_weights.get(token, 1.0) * self.retriever.get_scores([token])
        return total

    def _weighted_top(self, tokens: list[str], k: int) -> tuple[list[int], list[float]]:
        scores = self._weighted_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:k]       # ties by passage order
        return [int(i) for i in top], [float(scores[i]) for i in top]


def term_recall_weights(pairs: Iterable[tuple[str, str]], tokens: Callable[[str], list[str]],
                        smoothing: float = 5.0) -> dict[str, float]:
    """Query-term weights learned from (question, positive passage) pairs: for each term of the questions, its term
    recall — the share of the questions containing it whose positive passage contains it too — relative to the
    mean over all question terms, smoothed toward that mean by ``smoothing`` pseudo-questions:

        weight(t) = (hits(t) + smoothing · mean) / (questions(t) + smoothing) / mean

    A term users ask with but answers rarely repeat (怎么办, 吗, 吃什么) falls below 1; a term answers share (a
    disease, a drug) rises above it. This is the classic relevance weighting of BM25 (Robertson & Spärck Jones)
    estimated from training pairs, as term-necessity prediction does (Zhao & Callan 2010). ``tokens``: the BM25's
    tokeniser (``BM25Index.tokens``), so that the weights key the terms the index scores.

    Example::

        weights = term_recall_weights([("感冒怎么办", "感冒多喝水"), ("发烧怎么办", "发烧吃退烧药")], list)
        weights["办"] < 1 < weights["感"]
    """
    questions, hits = Counter(), Counter()
    for query, passage in pairs:
        passage_terms = set(tokens(passage))
        for term in set(tokens(query)):
            questions[term] += 1
            hits[term] += term in passage_terms
    if not questions:
        return {}
    mean = sum(hits.values()) / sum(questions.values())
    if mean == 0:
        return {term: 1.0 for term in questions}     # no question shares a term with its passage: nothing learned
    return {term: (hits[term] + smoothing * mean) / (questions[term] + smoothing) / mean
            for term in sorted(questions)}


def describe_lexical(lexical: dict | None, table: str = "results/eval/bm25_term_weights.json") -> str:
    """One phrase for the report and the model card: which BM25 (``lexical`` as recorded in results/eval/*.json,
    with the hybrid's learned ``term_weights`` where it had them; None, from results written before it was
    recorded: jieba's words, the only BM25 then). ``table``: where the reader finds the weights."""
    lexical = lexical or {"tokens": "words", "k1": 1.5, "b": 0.75}
    tokens = ("each Chinese character and each adjacent pair (other scripts as words)"
              if lexical["tokens"] == "cjk_bigrams" else "jieba's search-mode words")
    described = f"BM25 (k1 {lexical['k1']:g}, b {lexical['b']:g}) over {tokens}"
    learned = lexical.get("term_weights")
    if learned and learned.get("method", "off") != "off":
        described += (f", each question term's score weighted by its term recall in the {learned['train_questions']} "
                      f"train questions ({learned['terms']} terms: {table})")
    return described
