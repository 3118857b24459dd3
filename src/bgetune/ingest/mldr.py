"""MLDR / Tevatron-style retrieval JSONL (as downloaded, gzipped or not): one query per line with its judged
passages, ``{"query_id", "query", "positive_passages": [{"docid", "title", "text"}], "negative_passages": [...]}``.

Every distinct ``docid`` becomes a document (its long text is chunked like any document); the query is a question
on its first positive document, its other positives relevant too, and its negative passages kept as given
negatives (strategy ``given`` in mining). Document-level evaluation (``eval.level: document``) scores the
documents, as MLDR's own tables do.

Example::

    documents = read_mldr(path, "mldr-zh-dev.jsonl.gz", records, policy, counts)
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import QA, Document, RecordPolicy, Section


def looks_like_mldr(record: dict) -> bool:
    return "positive_passages" in record and isinstance(record.get("query"), str)


def read_mldr(path: Path, relative: str, records, policy: RecordPolicy, counts: Counter) -> list[Document]:
    documents: dict[str, Document] = {}

    def document_for(passage: dict, where: str) -> Document | None:
        docid, text = passage.get("docid", passage.get("id")), passage.get("text")
        if docid is None or not isinstance(text, str):
            policy.bad(where, "a passage needs a docid and a text", "mldr_bad_passage")
            return None
        key = str(docid)
        if key not in documents:
            title = passage.get("title") if isinstance(passage.get("title"), str) and passage.get("title") else None
            documents[key] = Document(doc_id=f"{relative}:{key}", title=title,
                                      sections=[Section(text=text.strip(), title=title)])
        return documents[key]

    for where_in_file, record in records:
        where = f"{path}: {where_in_file}"
        positives_raw, negatives_raw = record.get("positive_passages"), record.get("negative_passages") or []
        if not isinstance(positives_raw, list) or not positives_raw or not isinstance(negatives_raw, list):
            policy.bad(where, "'positive_passages' must be a non-empty list (and 'negative_passages' a list)",
                       "mldr_bad_passages")
            continue
        positives = [d for d in (document_for(p, where) for p in positives_raw if isinstance(p, dict)) if d]
        negatives = [d for d in (document_for(p, where) for p in negatives_raw if isinstance(p, dict)) if d]
        if not positives:
            continue
        positive_ids = {d.doc_id for d in positives}
        counts["given_negatives"] += len(negatives)
        qid = str(record.get("query_id", where_in_file.split()[-1]))
        positives[0].sections[0].qas.append(QA(
            qid=f"{relative}:{qid}", question=record["query"].strip(),
            extra_pos_docs=[d.doc_id for d in positives[1:]],
            neg_docs=[d.doc_id for d in negatives if d.doc_id not in positive_ids]))
    return list(documents.values())
