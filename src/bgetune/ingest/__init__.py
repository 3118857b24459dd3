"""Read raw documents of every supported format into one Document shape.

One reader per format (``text``: .txt/.md, ``jsonl``: articles with a text field, ``squad``: SQuAD JSON with
questions). ``load_documents`` walks a folder (or takes one file), dispatches by extension and counts what it skips.

Example::

    documents, report = load_documents("data/raw", DataParams())
    report  # {"files": {"squad": 1, "text": 3}, "documents": 44, "questions": 180, "skipped": {...}}
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import QA, Document, Section, decode_file
from bgetune.ingest.jsonl import read_jsonl_articles
from bgetune.ingest.squad import read_squad
from bgetune.ingest.text import read_text_document
from bgetune.records import InputError

__all__ = ["QA", "Document", "Section", "load_documents", "decode_file"]


def load_documents(raw: str | Path, data_params) -> tuple[list[Document], dict]:
    root = Path(raw)
    if not root.exists():
        raise InputError(f"{root}: raw data path does not exist (data.raw_dir in params.yaml)")
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    documents: list[Document] = []
    by_reader: Counter = Counter()
    skipped: Counter = Counter()
    for path in files:
        name = path.name
        if name.startswith(".") or any(part.startswith(".") for part in path.relative_to(root).parts[:-1] if root.is_dir()):
            skipped["hidden_file"] += 1
            continue
        relative = path.relative_to(root).as_posix() if root.is_dir() else path.name
        domain = path.parent.relative_to(root).as_posix() if root.is_dir() and path.parent != root else None
        suffix = path.suffix.lower()
        if suffix in (".txt", ".md", ".markdown"):
            docs = [read_text_document(path, relative, domain, data_params)]
            by_reader["text"] += 1
        elif suffix == ".jsonl":
            docs = read_jsonl_articles(path, relative, data_params)
            by_reader["jsonl"] += 1
        elif suffix == ".json":
            docs = read_squad(path, relative, data_params)
            by_reader["squad"] += 1
        else:
            skipped["unsupported_extension"] += 1
            continue
        for document in docs:
            if any(section.text.strip() for section in document.sections):
                documents.append(document)
            else:
                skipped["empty_document"] += 1
    if not documents:
        raise InputError(f"{root}: no documents with text found (files read: {dict(by_reader)}, skipped: {dict(skipped)})")
    ids = Counter(d.doc_id for d in documents)
    duplicates = [i for i, n in ids.items() if n > 1]
    if duplicates:
        raise InputError(f"{root}: duplicate document ids {duplicates[:5]}")
    report = {
        "files": dict(by_reader),
        "documents": len(documents),
        "sections": sum(len(d.sections) for d in documents),
        "questions": sum(len(s.qas) for d in documents for s in d.sections),
        "skipped": dict(skipped),
    }
    return documents, report
