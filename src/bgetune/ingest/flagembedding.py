"""FlagEmbedding training JSONL used as is: ``{"query": str, "pos": [str], "neg": [str]}`` per line.

Every distinct passage text (normalised) becomes a one-passage document; the query is a question on its first
positive, its other positives relevant too, and its ``neg`` passages are kept as given negatives (strategy
``given`` in mining, filled before any mined negative).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.dedup import normalise
from bgetune.ingest.document import QA, Document, RecordPolicy, Section


def looks_like_flagembedding(record: dict) -> bool:
    """A record with FlagEmbedding's keys (their types are checked record by record, naming the line)."""
    return "query" in record and "pos" in record


def read_flagembedding(path: Path, relative: str, records, policy: RecordPolicy, counts: Counter) -> list[Document]:
    documents: dict[str, Document] = {}

    def document_for(text: str, domain) -> Document:
        key = normalise(text)
        if key not in documents:
            documents[key] = Document(doc_id=f"{relative}:p{len(documents)}", domain=domain,
                                      sections=[Section(text=text.strip())])
        else:
            counts["repeated_passage_text"] += 1
        return documents[key]

    for lineno, record in records:
        where = f"{path}: line {lineno}"
        query, pos, neg = record.get("query"), record.get("pos"), record.get("neg", [])
        if not isinstance(query, str) or not query.strip():
            policy.bad(where, "missing or empty 'query'", "empty_query")
            continue
        if not isinstance(pos, list) or not all(isinstance(p, str) for p in pos) or not any(p.strip() for p in pos):
            policy.bad(where, "'pos' must be a non-empty list of strings", "bad_pos")
            continue
        if not isinstance(neg, list) or not all(isinstance(n, str) for n in neg):
            policy.bad(where, "'neg' must be a list of strings", "bad_neg")
            continue
        domain = record.get("domain") or record.get("category")
        positives = [document_for(p, domain) for p in pos if p.strip()]
        negatives = [document_for(n, domain) for n in neg if n.strip()]
        pos_doc_ids = {d.doc_id for d in positives}
        dropped = [d for d in negatives if d.doc_id in pos_doc_ids]
        counts["given_negative_equal_to_a_positive"] += len(dropped)
        qa = QA(qid=f"{relative}:{lineno}", question=query.strip(),
                extra_pos_docs=[d.doc_id for d in positives[1:]],
                neg_docs=[d.doc_id for d in negatives if d.doc_id not in pos_doc_ids])
        positives[0].sections[0].qas.append(qa)
    return list(documents.values())
