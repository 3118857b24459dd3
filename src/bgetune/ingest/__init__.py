"""Read raw documents of every supported format into one Document shape.

One reader per format, chosen by extension and, for JSON/JSONL, by content (``data.format`` forces one):

==============  ==============================================================================================
text            .txt / .md (Markdown headings → section titles; the sub-folder → the domain)
html            .html / .htm (<h1>–<h6> → section titles; scripts, styles, menus and footers left out)
docx            Word .docx (Heading styles → section titles, Title → the document's; tables row by row)
pdf             .pdf with a text layer (bookmarks → section titles; wrapped lines joined, running headers dropped)
articles        JSONL or a JSON list of articles with a text field, or a file field naming a file inside raw_dir
                (plain text, or a Markdown, HTML, Word or PDF file read by its format's reader)
qa_table        .csv / .tsv / .xlsx / .xls, a .json list of rows, or .jsonl rows with the ``data.qa_columns``
squad           SQuAD .json (CMRC 2018, DuReader)
beir            a folder with corpus.jsonl + queries.jsonl + qrels/*.tsv (BEIR, C-MTEB exports)
mldr            MLDR / Tevatron .jsonl(.gz): {query, positive_passages: [{docid, title, text}], negative_passages}
llamaindex      llama-index's QA JSON: {queries: {id: text}, corpus: {id: text}, relevant_docs: {id: [ids]}}
flagembedding   .jsonl of {"query", "pos", "neg"} (FlagEmbedding's training format), used as is
==============  ==============================================================================================

Any .json/.jsonl/.txt/.md/.html may be gzipped (.json.gz, …). ``load_documents`` walks a folder (or takes one file),
reads only files inside it (links and file fields that lead out are refused), counts what it skips by reason and
records the encoding each file was read with.

Example::

    documents, report = load_documents("data/raw", DataParams())
    report  # {"files": {"squad": 1, "text": 3}, "documents": 44, "questions": 180, "skipped": {...}, ...}
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

from bgetune.ingest.beir import is_beir_folder, read_beir
from bgetune.ingest.document import QA, Document, RecordPolicy, Section, decode_file, inside, json_records
from bgetune.ingest.flagembedding import looks_like_flagembedding, read_flagembedding
from bgetune.ingest.jsonl import read_articles
from bgetune.ingest.llamaindex import looks_like_llamaindex, read_llamaindex
from bgetune.ingest.mldr import looks_like_mldr, read_mldr
from bgetune.ingest.readers import DOCUMENT_SUFFIXES, kind_of, read_document_file
from bgetune.ingest.squad import read_squad
from bgetune.ingest.table import TABLE_SUFFIXES, read_qa_table
from bgetune.records import InputError

log = logging.getLogger("bgetune")
__all__ = ["QA", "Document", "Section", "RecordPolicy", "load_documents", "decode_file", "SUPPORTED"]
SUPPORTED = (".txt, .md, .html, .docx, .pdf, .json, .jsonl (also .json.gz, .jsonl.gz), .csv, .tsv, .xlsx, .xls "
             "and BEIR folders")


def load_documents(raw: str | Path, data_params) -> tuple[list[Document], dict]:
    root = Path(raw)
    if not root.exists():
        raise InputError(f"{root}: raw data path does not exist (data.raw_dir in params.yaml)")
    top = root.resolve() if root.is_dir() else root.resolve().parent
    policy = RecordPolicy(data_params.on_bad_record)
    counts: Counter = Counter()           # kept-but-noteworthy records (rows without questions, …)
    documents: list[Document] = []
    by_reader: Counter = Counter()
    skipped: Counter = Counter()
    unsupported: list[str] = []
    beir_folders = sorted({p.parent for p in root.rglob("corpus.jsonl") if is_beir_folder(p.parent)}) \
        if root.is_dir() else []
    for folder in beir_folders:
        relative = folder.relative_to(root).as_posix()
        documents.extend(read_beir(folder, "" if relative == "." else relative, data_params, policy, counts))
        by_reader["beir"] += 1
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    # JSON/JSONL first: article records may name document files, which are then not documents of their own.
    files.sort(key=lambda p: kind_of(p) in DOCUMENT_SUFFIXES)
    referenced: set[Path] = set()
    for path in files:
        if any(folder in path.parents for folder in beir_folders):
            continue
        relative_parts = path.relative_to(root).parts if root.is_dir() else (path.name,)
        if any(part.startswith(".") for part in relative_parts):
            skipped["hidden_file"] += 1
            continue
        inside(top, path, f"{path}")                 # a link in raw_dir that leads out of it
        if path.resolve() in referenced:
            continue   # read through the record that names it
        relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
        domain = path.parent.relative_to(root).as_posix() if root.is_dir() and path.parent != root else None
        reader, docs = _read_file(path, relative, domain, data_params, policy, counts, referenced, top)
        if reader is None:
            unsupported.append(relative)
            continue
        by_reader[reader] += 1
        for document in docs:
            if any(_has_text(section.text) for section in document.sections):
                documents.append(document)
            else:
                skipped["no_text"] += 1          # empty, or emoji and punctuation only
    listed = ", ".join(unsupported[:5]) + (f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else "")
    if unsupported:
        # Skipped by name, never silently: a LICENCE or a stray PDF beside the data should not stop a run, and
        # results/data.json lists every one. With nothing else to read it is an error (below).
        log.warning("%s: skipping %d file(s) of a type bgetune cannot read (%s); supported: %s — convert them to "
                    "text (e.g. pdftotext, pandoc) to include them", root, len(unsupported), listed, SUPPORTED)
        skipped["unsupported_file"] += len(unsupported)
    skipped.update(policy.skipped)
    if not documents and unsupported:
        raise InputError(f"{root}: no documents bgetune can read: {len(unsupported)} file(s) of an unsupported type "
                         f"({listed}); supported: {SUPPORTED}. Convert them to text (e.g. pdftotext, pandoc)")
    if not documents:
        raise InputError(f"{root}: no documents with text found (files read: {dict(by_reader)}, skipped: "
                         f"{dict(sorted(skipped.items()))})")
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
        "unsupported_files": unsupported,
        "noted": dict(sorted(counts.items())),
        "encodings": {Path(k).resolve().relative_to(top).as_posix() if Path(k).resolve().is_relative_to(top) else k:
                      v for k, v in sorted(policy.encodings.items())},
    }
    return documents, report


def _has_text(text: str) -> bool:
    """Letters or digits in some script (emoji, punctuation and whitespace alone are not a document)."""
    return any(ch.isalnum() for ch in text)


def _read_file(path: Path, relative: str, domain: str | None, data_params, policy: RecordPolicy,
               counts: Counter, referenced: set[Path], top: Path) -> tuple[str | None, list[Document]]:
    kind = kind_of(path)
    forced = data_params.format
    document = read_document_file(path, relative, domain, data_params, policy, counts)
    if document is not None:
        return document[0], [document[1]]
    if kind in TABLE_SUFFIXES:
        return "qa_table", read_qa_table(path, relative, data_params, policy, counts=counts)
    if kind == ".json":
        text = decode_file(path, data_params.encoding, policy)
        if not text.strip():
            raise InputError(f"{path}: empty file")
        try:
            root = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None
        if forced == "llamaindex" or (forced == "auto" and looks_like_llamaindex(root)):
            return "llamaindex", read_llamaindex(path, relative, root, policy, counts)
        if isinstance(root, list):
            records = []
            for i, row in enumerate(root):
                if isinstance(row, dict):
                    records.append((f"record [{i}]", row))
                else:
                    policy.bad(f"{path}: record [{i}]", "expected an object", "not_an_object")
            return _read_records(path, relative, [(i, r) for i, r in records], data_params, policy, counts,
                                 referenced, top, forced)
        return "squad", read_squad(path, relative, data_params, policy, root=root)
    if kind == ".jsonl":
        records = list(json_records(path, decode_file(path, data_params.encoding, policy), policy))
        if not records:
            raise InputError(f"{path}: no JSON records (empty file?)")
        return _read_records(path, relative, [(f"line {n}", r) for n, r in records], data_params, policy, counts,
                             referenced, top, forced)
    return None, []


def _read_records(path, relative, records, data_params, policy, counts, referenced, top, forced):
    """JSON(L) records: FlagEmbedding triples, MLDR/Tevatron queries, QA rows or articles — by the first record's
    keys unless ``data.format`` says."""
    first = records[0][1] if records else {}
    kind = forced if forced not in ("auto", "squad", "llamaindex") else (
        "flagembedding" if looks_like_flagembedding(first)
        else "mldr" if looks_like_mldr(first)
        else "qa_table" if data_params.qa_columns.answer in first and data_params.text_field not in first
        else "articles")
    if kind == "flagembedding":
        numbered = [(int(where.split()[-1]) if where.startswith("line") else i, r)
                    for i, (where, r) in enumerate(records)]
        return kind, read_flagembedding(path, relative, numbered, policy, counts)
    if kind == "mldr":
        return kind, read_mldr(path, relative, records, policy, counts)
    if kind == "qa_table":
        _check_row_columns(path, [r for _, r in records], data_params)
        rows = [(f"{path}: {where}", r) for where, r in records]
        return kind, read_qa_table(path, relative, data_params, policy, rows=rows, counts=counts)
    return "articles", read_articles(path, relative, data_params, policy, records, referenced, top, counts)


def _check_row_columns(path: Path, rows: list[dict], data_params) -> None:
    columns = data_params.qa_columns
    seen = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in [*columns.query, columns.answer] if c not in seen]
    if missing:
        raise InputError(f"{path}: field(s) {missing} not found in any record; records have {sorted(seen)} "
                         "(set data.qa_columns in params.yaml, or data.format)")
