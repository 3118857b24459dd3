"""The hybrid's lexical half, trained: query-term weights for BM25 learned from the train pairs
(``eval.term_weights``), so that a question's asking words (怎么办, 吗, 吃什么) count less than its disease or drug.
The baseline BM25 stays unweighted: it is what a user has without bgetune.

Example::

    learned = learn_term_weights(root, params)     # None when eval.term_weights.method is off
    test = load_test_set(root, params.eval, 100, lexical=params.lexical, term_weights=learned.weights)
    learned.summary()   # {"method": "term_recall", "smoothing": 5.0, "train_questions": 4120, "terms": ..., ...}
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bgetune.records import read_pairs, read_passages

log = logging.getLogger("bgetune")


@dataclass
class LearnedTermWeights:
    method: str
    smoothing: float
    train_questions: int
    weights: dict[str, float]

    def summary(self, shown: int = 10) -> dict:
        """What results/eval/*.json record: the setting, the counts, and the lowest and highest weights (the whole
        table is the evaluate-bm25 stage's results/eval/bm25_term_weights.json)."""
        ranked = sorted(self.weights.items(), key=lambda item: (item[1], item[0]))
        return {"method": self.method, "smoothing": self.smoothing, "train_questions": self.train_questions,
                "terms": len(self.weights), "terms_below_1": sum(w < 1 for w in self.weights.values()),
                "lowest": [[t, round(w, 4)] for t, w in ranked[:shown]],
                "highest": [[t, round(w, 4)] for t, w in ranked[::-1][:shown]]}


def learn_term_weights(root: Path, params) -> LearnedTermWeights | None:
    """``eval.term_weights`` learned from data/pairs/train.jsonl over data/corpus.jsonl with ``lexical``'s tokens;
    None when the method is off. A question with several positives counts a term as recalled when any of them has
    it."""
    from bgetune.lexical import term_recall_weights
    from bgetune.text import lexical_tokens

    settings = params.eval.term_weights
    if settings.method == "off":
        return None
    text_of = {p.id: p.text for p in read_passages(root / "data/corpus.jsonl")}
    pairs = [(p.query, "\n".join(text_of[i] for i in p.pos_ids if i in text_of))
             for p in read_pairs(root / "data/pairs/train.jsonl") if p.pos_ids]
    kind = params.lexical.tokens      # the tokens BM25Index makes: the weights key the terms it scores
    weights = term_recall_weights(pairs, lambda text: lexical_tokens(text, kind), settings.smoothing)
    learned = LearnedTermWeights(settings.method, settings.smoothing, len(pairs), weights)
    summary = learned.summary(shown=5)
    log.info("BM25 term weights (%s) from %d train questions: %d terms, %d below 1; lowest %s; highest %s",
             settings.method, len(pairs), summary["terms"], summary["terms_below_1"],
             ", ".join(f"{t} {w:.2f}" for t, w in summary["lowest"]),
             ", ".join(f"{t} {w:.2f}" for t, w in summary["highest"]))
    return learned
