"""Read raw documents of every supported format into one Document shape.

One reader per format, chosen by extension and, for JSON/JSONL, by content (``data.format`` forces one):

==============  ==============================================================================================
text            .txt / .md (Markdown headings → section titles; the sub-folder → the domain)
articles        .jsonl articles with a text field, or a file field naming a text file beside it
qa_table        .csv / .tsv / .xlsx / .xls, a .json list of rows, or .jsonl rows with the ``data.qa_columns``
squad           SQuAD .json (CMRC 2018, DuReader)
beir            a folder with corpus.jsonl + queries.jsonl + qrels/*.tsv (BEIR, MLDR, C-MTEB exports)
flagembedding   .jsonl of {"query", "pos", "neg"} (FlagEmbedding's training format), used as is
==============  ==============================================================================================

``load_documents`` walks a folder (or takes one file) and counts what it skips by reason.

Example::

    documents, report = load_documents("data/raw", DataParams())
    report  # {"files": {"squad": 1, "text": 3}, "documents": 44, "questions": 180, "skipped": {...}}
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bgetune.ingest.beir import is_beir_folder, read_beir
from bgetune.ingest.document import QA, Document, RecordPolicy, Section, decode_file, json_records
from bgetune.ingest.flagembedding import looks_like_flagembedding, read_flagembedding
from bgetune.ingest.jsonl import read_jsonl_articles
from bgetune.ingest.squad import read_squad
from bgetune.ingest.table import TABLE_SUFFIXES, read_qa_table
from bgetune.ingest.text import read_text_document
from bgetune.records import InputError

__all__ = ["QA", "Document", "Section", "RecordPolicy", "load_documents", "decode_file"]


def load_documents(raw: str | Path, data_params) -> tuple[list[Document], dict]:
    root = Path(raw)
    if not root.exists():
        raise InputError(f"{root}: raw data path does not exist (data.raw_dir in params.yaml)")
    policy = RecordPolicy(data_params.on_bad_record)
    counts: Counter = Counter()           # kept-but-noteworthy records (rows without questions, …)
    documents: list[Document] = []
    by_reader: Counter = Counter()
    skipped: Counter = Counter()
    beir_folders = []
    if root.is_dir():
        beir_folders = sorted({p.parent for p in root.rglob("corpus.jsonl") if is_beir_folder(p.parent)})
    for folder in beir_folders:
        relative = folder.relative_to(root).as_posix()
        documents.extend(read_beir(folder, "" if relative == "." else relative, data_params, policy, counts))
        by_reader["beir"] += 1
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    # JSON/JSONL first: article records may name text files, which are then not documents of their own.
    files.sort(key=lambda p: p.suffix.lower() in (".txt", ".md", ".markdown"))
    referenced: set[Path] = set()
    for path in files:
        if any(folder in path.parents for folder in beir_folders):
            continue
        name = path.name
        if name.startswith(".") or (root.is_dir() and any(part.startswith(".") for part in path.relative_to(root).parts[:-1])):
            skipped["hidden_file"] += 1
            continue
        relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
        domain = path.parent.relative_to(root).as_posix() if root.is_dir() and path.parent != root else None
        if path.resolve() in referenced:
            continue   # read through the JSONL record that names it
        reader, docs = _read_file(path, relative, domain, data_params, policy, counts, referenced)
        if reader is None:
            skipped["unsupported_extension"] += 1
            continue
        by_reader[reader] += 1
        for document in docs:
            if any(section.text.strip() for section in document.sections):
                documents.append(document)
            else:
                skipped["empty_document"] += 1
    skipped.update(policy.skipped)
    if not documents:
        raise InputError(f"{root}: no documents with text found (files read: {dict(by_reader)}, skipped: {dict(sorted(skipped.items()))})")
    ids = Counter(d.doc_id for d in documents)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise InputError(f"{root}: duplicate document ids {duplicates[:5]} (check data.id_field / qa_columns.id)")
    report = {
        "files": dict(by_reader),
        "documents": len(documents),
        "sections": sum(len(d.sections) for d in documents),
        "questions": sum(len(s.qas) for d in documents for s in d.sections),
        "skipped": dict(sorted(skipped.items())),
        "noted": dict(sorted(counts.items())),
    }
    return documents, report


def _read_file(path: Path, relative: str, domain: str | None, data_params, policy: RecordPolicy,
               counts: Counter, referenced: set[Path]) -> tuple[str | None, list[Document]]:
    suffix = path.suffix.lower()
    forced = data_params.format
    if suffix in (".txt", ".md", ".markdown"):
        return "text", [read_text_document(path, relative, domain, data_params)]
    if suffix in TABLE_SUFFIXES:
        return "qa_table", read_qa_table(path, relative, data_params, policy, counts=counts)
    if suffix == ".json":
        text = decode_file(path, data_params.encoding)
        if not text.strip():
            raise InputError(f"{path}: empty file")
        try:
            root = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None
        if forced == "qa_table" or (forced == "auto" and isinstance(root, list)):
            if not isinstance(root, list):
                raise InputError(f"{path}: a QA table in JSON must be a list of row objects")
            rows = []
            for i, row in enumerate(root):
                if isinstance(row, dict):
                    rows.append((f"{path}: record [{i}]", row))
                else:
                    policy.bad(f"{path}: record [{i}]", "expected an object", "not_an_object")
            _check_row_columns(path, [r for _, r in rows], data_params)
            return "qa_table", read_qa_table(path, relative, data_params, policy, rows=rows, counts=counts)
        return "squad", read_squad(path, relative, data_params, policy, root=root)
    if suffix == ".jsonl":
        records = list(json_records(path, decode_file(path, data_params.encoding), policy))
        if not records:
            raise InputError(f"{path}: no JSON records (empty file?)")
        first = records[0][1]
        kind = forced if forced != "auto" else (
            "flagembedding" if looks_like_flagembedding(first)
            else "qa_table" if data_params.qa_columns.answer in first and data_params.text_field not in first
            else "articles")
        if kind == "flagembedding":
            return kind, read_flagembedding(path, relative, records, policy, counts)
        if kind == "qa_table":
            _check_row_columns(path, [r for _, r in records], data_params)
            rows = [(f"{path}: line {lineno}", r) for lineno, r in records]
            return kind, read_qa_table(path, relative, data_params, policy, rows=rows, counts=counts)
        return "articles", read_jsonl_articles(path, relative, data_params, policy, records=records,
                                               referenced=referenced)
    return None, []


def _check_row_columns(path: Path, rows: list[dict], data_params) -> None:
    columns = data_params.qa_columns
    seen = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in [*columns.query, columns.answer] if c not in seen]
    if missing:
        raise InputError(f"{path}: field(s) {missing} not found in any record; records have {sorted(seen)} "
                         "(set data.qa_columns in params.yaml)")
