"""Retrieval benchmarks in the BEIR / MLDR / C-MTEB layout: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``.

Corpus records are ``{"_id", "title", "text"}`` (``id``/``docid``/``pid`` also accepted), queries ``{"_id", "text"}``
(``id``/``query_id``/``qid`` and ``query`` also accepted), qrels lines ``query-id <tab> corpus-id <tab> score`` with or
without a header. Each corpus record is a document; each query is a question on its first relevant document, the
others relevant too. Relevance 0 rows are ignored (counted); a qrel naming an unknown query or document is a bad
record.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import QA, Document, RecordPolicy, Section, decode_file, json_records

_DOC_ID = ("_id", "id", "docid", "pid", "doc_id")
_QUERY_ID = ("_id", "id", "query_id", "qid")
_QUERY_TEXT = ("text", "query")


def is_beir_folder(folder: Path) -> bool:
    return (folder / "corpus.jsonl").is_file() and (folder / "queries.jsonl").is_file()


def read_beir(folder: Path, relative: str, data_params, policy: RecordPolicy, counts: Counter) -> list[Document]:
    prefix = f"{relative}:" if relative else ""
    documents: dict[str, Document] = {}
    corpus_path = folder / "corpus.jsonl"
    for lineno, record in json_records(corpus_path, decode_file(corpus_path, data_params.encoding, policy), policy):
        doc_key, text = _first(record, _DOC_ID), record.get("text")
        if doc_key is None or not isinstance(text, str):
            policy.bad(f"{corpus_path}: line {lineno}", "a corpus record needs an id (_id) and a text", "beir_bad_doc")
            continue
        title = record.get("title") if isinstance(record.get("title"), str) and record.get("title") else None
        documents[str(doc_key)] = Document(doc_id=f"{prefix}{doc_key}", title=title,
                                           domain=record.get(data_params.domain_field),
                                           sections=[Section(text=text.strip(), title=title)])
    queries: dict[str, str] = {}
    queries_path = folder / "queries.jsonl"
    for lineno, record in json_records(queries_path, decode_file(queries_path, data_params.encoding, policy), policy):
        query_key, text = _first(record, _QUERY_ID), _first(record, _QUERY_TEXT)
        if query_key is None or not isinstance(text, str):
            policy.bad(f"{queries_path}: line {lineno}", "a query record needs an id (_id) and a text", "beir_bad_query")
            continue
        queries[str(query_key)] = text.strip()
    relevant: dict[str, list[str]] = {}
    qrels = sorted((folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
    if not qrels:
        policy.bad(str(folder), "no qrels/*.tsv: queries have no relevant documents", "beir_no_qrels")
    for path in qrels:
        for lineno, line in enumerate(decode_file(path, data_params.encoding, policy).splitlines(), start=1):
            fields = line.strip().split("\t")
            if not line.strip() or (lineno == 1 and not _is_number(fields[-1])):
                continue   # blank line or header
            if len(fields) < 2:
                policy.bad(f"{path}: line {lineno}", "expected query-id, corpus-id, score", "beir_bad_qrel")
                continue
            query_key, doc_key = fields[0], fields[1]
            if len(fields) > 2 and _is_number(fields[-1]) and float(fields[-1]) <= 0:
                counts["qrels_not_relevant"] += 1
                continue
            if query_key not in queries or doc_key not in documents:
                policy.bad(f"{path}: line {lineno}", f"unknown {'query' if query_key not in queries else 'document'} "
                                                      f"id {query_key if query_key not in queries else doc_key!r}",
                           "beir_unknown_id")
                continue
            if doc_key not in relevant.setdefault(query_key, []):
                relevant[query_key].append(doc_key)
    for query_key, text in queries.items():
        docs = relevant.get(query_key)
        if not docs:
            counts["query_without_relevant_document"] += 1
            continue
        first = documents[docs[0]]
        first.sections[0].qas.append(QA(qid=f"{prefix}{query_key}", question=text,
                                        extra_pos_docs=[documents[d].doc_id for d in docs[1:]]))
    return list(documents.values())


def _first(record: dict, keys: tuple[str, ...]):
    for key in keys:
        if record.get(key) not in (None, ""):
            return record[key]
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False
