"""JSONL articles: one JSON object per line with a text field (names configurable in params.data)."""
from __future__ import annotations

from pathlib import Path

from bgetune.ingest.document import Document, Section, decode_file
from bgetune.records import InputError, numbered_jsonl


def read_jsonl_articles(path: Path, relative: str, data_params) -> list[Document]:
    documents = []
    for lineno, record in numbered_jsonl(path, text=decode_file(path, data_params.encoding)):
        text = record.get(data_params.text_field)
        if not isinstance(text, str):
            raise InputError(f"{path}: line {lineno}: missing text field {data_params.text_field!r} (data.text_field)")
        doc_id = f"{relative}:{record.get(data_params.id_field, lineno)}"
        title = record.get(data_params.title_field)
        domain = record.get(data_params.domain_field)
        documents.append(Document(doc_id=doc_id, title=title, domain=domain,
                                  sections=[Section(text=text.strip(), title=title)]))
    return documents
