"""Document-level evaluation: long documents are split into many passages, and a benchmark like MLDR asks whether
the right *document* comes back. A document's score is its passages' — the best one's (MaxP), their sum, or its
first passage's — and Recall/NDCG are computed over documents.

Example::

    ranking = document_ranking(["d1#2", "d2#0", "d1#0"], [0.9, 0.8, 0.7], doc_of, mode="max")   # ["d1", "d2"]
"""
from __future__ import annotations


def document_ranking(passage_ids: list[str], scores: list[float] | None, doc_of: dict[str, str],
                     mode: str = "max") -> list[str]:
    """Documents in the order their passages give: ``max`` — a document ranks where its best passage ranks;
    ``sum`` — by the sum of its passages' scores (needs scores); ``first`` — by its first passage only (the
    passage ids' ``#0``), others ignored."""
    if mode == "max" or scores is None:
        return list(dict.fromkeys(doc_of[p] for p in passage_ids))
    if mode == "first":
        firsts = [p for p in passage_ids if first_passage(p, doc_of)]
        return list(dict.fromkeys(doc_of[p] for p in firsts))
    totals: dict[str, float] = {}
    order: dict[str, int] = {}
    for position, (pid, score) in enumerate(zip(passage_ids, scores)):
        doc = doc_of[pid]
        totals[doc] = totals.get(doc, 0.0) + float(score)
        order.setdefault(doc, position)
    return sorted(totals, key=lambda d: (-round(totals[d], 6), order[d]))


def first_passage(passage_id: str, doc_of: dict[str, str]) -> bool:
    return passage_id.endswith("#0") or passage_id == doc_of.get(passage_id)


def spans_several_passages(doc_of: dict[str, str]) -> bool:
    docs = list(doc_of.values())
    return len(set(docs)) < len(docs)
