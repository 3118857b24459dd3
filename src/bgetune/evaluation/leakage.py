"""Leakage check: a test query or test positive passage that also appears in the training pairs inflates every
test metric. Texts are compared after normalisation (case, width, whitespace, punctuation).

Example::

    report = find_leaks(train_pairs, test_pairs, passages)
    if report["leaked_queries"] or report["leaked_passages"]:
        raise LeakageError(describe(report))
"""
from __future__ import annotations

from bgetune.dedup import normalise
from bgetune.records import InputError


class LeakageError(InputError):
    """Test data also appears in the training pairs."""


def find_leaks(train_pairs, test_pairs, passages) -> dict:
    text_of = {p.id: p.text for p in passages}
    train_queries = {normalise(p.query) for p in train_pairs}
    train_passages = {normalise(text_of[i]) for p in train_pairs for i in p.pos_ids if i in text_of}
    leaked_queries = [p.query for p in test_pairs if normalise(p.query) in train_queries]
    leaked_passages = sorted({i for p in test_pairs for i in p.pos_ids
                              if i in text_of and normalise(text_of[i]) in train_passages})
    return {"leaked_queries": len(leaked_queries), "leaked_passages": len(leaked_passages),
            "examples": {"queries": leaked_queries[:5], "passages": leaked_passages[:5]}}


def describe(report: dict) -> str:
    return (f"leakage: {report['leaked_queries']} test queries and {report['leaked_passages']} test positive "
            f"passages also appear in the training pairs (e.g. {report['examples']}); split by document groups "
            "(split.group_by) or set eval.leakage: warn to evaluate anyway")
