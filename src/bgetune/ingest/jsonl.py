"""JSONL articles: one JSON object per line with a text field (names configurable in params.data)."""
from __future__ import annotations

import json
from pathlib import Path

from bgetune.ingest.document import Document, Section, decode_file
from bgetune.records import InputError


def read_jsonl_articles(path: Path, relative: str, data_params) -> list[Document]:
    documents = []
    for lineno, line in enumerate(decode_file(path, data_params.encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {lineno}: invalid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {lineno}: expected a JSON object")
        text = record.get(data_params.text_field)
        if not isinstance(text, str):
            raise InputError(f"{path}: line {lineno}: missing text field {data_params.text_field!r} (data.text_field)")
        doc_id = f"{relative}:{record.get(data_params.id_field, lineno)}"
        title = record.get(data_params.title_field)
        domain = record.get(data_params.domain_field)
        documents.append(Document(doc_id=doc_id, title=title, domain=domain,
                                  sections=[Section(text=text.strip(), title=title)]))
    return documents
