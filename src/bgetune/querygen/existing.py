"""Pairs that came with the data (SQuAD questions, QA tables), passed through with empty queries counted."""
from __future__ import annotations

from bgetune.records import Pair


def existing_pairs(passages, pairs: list[Pair], qa_params, seed: int, **_) -> tuple[list[Pair], dict]:
    kept = [p for p in pairs if p.query.strip()]
    return kept, {"kept": len(kept), "dropped_empty_query": len(pairs) - len(kept)}
