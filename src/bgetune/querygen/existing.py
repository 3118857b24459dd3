"""Pairs that came with the data (SQuAD questions, QA tables), passed through with empty queries counted.

The alternative wordings of a QA table's ``data.qa_columns.alt_queries`` (source ``existing_alt``) are kept in the
splits of ``qa_gen.existing.alt_query_splits`` only (training by default: val and test ask the main questions) and
the rest counted.

Example::

    pairs, report = existing_pairs(passages, split_pairs, params.qa_gen, seed=42)
    report   # {"kept": 4100, "dropped_empty_query": 0, "alt_kept": 4100, "alt_outside_splits": 1780}
"""
from __future__ import annotations

from bgetune.records import Pair


def existing_pairs(passages, pairs: list[Pair], qa_params, seed: int, **_) -> tuple[list[Pair], dict]:
    with_query = [p for p in pairs if p.query.strip()]
    alt_splits = set(qa_params.existing.alt_query_splits)
    kept = [p for p in with_query if p.source != "existing_alt" or p.split in alt_splits]
    report = {"kept": sum(p.source != "existing_alt" for p in kept), "dropped_empty_query": len(pairs) - len(with_query)}
    alternatives = [p for p in with_query if p.source == "existing_alt"]
    if alternatives:
        report["alt_kept"] = len(kept) - report["kept"]
        report["alt_outside_splits"] = len(alternatives) - report["alt_kept"]
    return kept, report
