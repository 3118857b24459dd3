"""The false-negative guard: decides whether a candidate may be a negative for a query, and counts why not.

Example::

    guard = NegativeGuard(relative_margin=0.05)
    guard.allows(candidate_id="d2#0", score=0.81, positive_ids={"d1#0"}, positive_score=0.83)  # False: too close
    guard.drops   # Counter({"above_relative_margin": 1})
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class NegativeGuard:
    relative_margin: float | None = None  # drop if score > positive_score * (1 - margin)
    max_score: float | None = None        # drop if score > max_score
    exclude_same_document: bool = False
    drops: Counter = field(default_factory=Counter)

    def allows(self, candidate_id: str, positive_ids: set[str], chosen: set[str], score: float | None = None,
               positive_score: float | None = None, candidate_doc: str | None = None,
               positive_docs: set[str] | None = None) -> bool:
        reason = self.reason(candidate_id, positive_ids, chosen, score, positive_score, candidate_doc, positive_docs)
        if reason:
            self.drops[reason] += 1
            return False
        return True

    def reason(self, candidate_id, positive_ids, chosen, score, positive_score, candidate_doc, positive_docs):
        if candidate_id in positive_ids:
            return "is_positive"
        if candidate_id in chosen:
            return "duplicate"
        if self.exclude_same_document and positive_docs and candidate_doc in positive_docs:
            return "same_document"
        if score is not None and self.max_score is not None and score > self.max_score:
            return "above_max_score"
        if (score is not None and positive_score is not None and self.relative_margin is not None
                and score > positive_score * (1.0 - self.relative_margin)):
            return "above_relative_margin"
        return None
