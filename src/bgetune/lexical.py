"""Lexical retrieval shared by mining, evaluation and qa-gen: BM25 (bm25s scores it) over the tokens and with the
k1 and b of params.yaml's ``lexical`` section.

Example::

    index = BM25Index(["高血压患者的饮食", "糖尿病的治疗"])          # lexical defaults: CJK bigrams, k1 1.2, b 0.75
    indices, scores = index.search(["高血压 饮食"], k=1)   # [[0]], [[score]]
    BM25Index(texts, LexicalParams(tokens="words"))         # jieba's search-mode words instead
"""
from __future__ import annotations

from bgetune.params.modelling import LexicalParams
from bgetune.text import lexical_tokens


class BM25Index:
    """BM25 (bm25s, Lucene variant) over ``lexical.tokens``: CJK character bigrams or jieba words."""

    def __init__(self, texts: list[str], lexical: LexicalParams | None = None):
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)   # "Building index from tokens" on every index

        self.lexical = lexical or LexicalParams()
        self.size = len(texts)
        self.retriever = bm25s.BM25(k1=self.lexical.k1, b=self.lexical.b)
        self.retriever.index([self.tokens(t) or ["<empty>"] for t in texts], show_progress=False)

    def tokens(self, text: str) -> list[str]:
        return lexical_tokens(text, self.lexical.tokens)

    def search(self, queries: list[str], k: int) -> tuple[list[list[int]], list[list[float]]]:
        k = min(k, self.size)
        tokens = [[t for t in self.tokens(q) if t in self.retriever.vocab_dict] for q in queries]
        # A query none of whose words occurs in the corpus scores 0 everywhere: corpus order, honestly unranked.
        indices = [list(range(k)) for _ in queries]
        scores = [[0.0] * k for _ in queries]
        searchable = [i for i, t in enumerate(tokens) if t]
        if searchable:
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
        scores = self.retriever.get_scores(tokens)
        return [float(scores[i]) for i in indices]


def describe_lexical(lexical: dict | None) -> str:
    """One phrase for the report and the model card: which BM25 (``lexical`` as recorded in results/eval/*.json;
    None, from results written before it was recorded: jieba's words, the only BM25 then)."""
    lexical = lexical or {"tokens": "words", "k1": 1.5, "b": 0.75}
    tokens = ("each Chinese character and each adjacent pair (other scripts as words)"
              if lexical["tokens"] == "cjk_bigrams" else "jieba's search-mode words")
    return f"BM25 (k1 {lexical['k1']:g}, b {lexical['b']:g}) over {tokens}"
