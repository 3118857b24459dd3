"""JSONL articles: one JSON object per line with a text field (names configurable in params.data).

The text may also live in a file beside the metadata: a record with ``data.text_file_field`` (default ``file``)
instead of the text field reads that file, relative to the JSONL's folder.
"""
from __future__ import annotations

from pathlib import Path

from bgetune.ingest.document import Document, RecordPolicy, Section, decode_file, json_records


def read_jsonl_articles(path: Path, relative: str, data_params, policy: RecordPolicy | None = None,
                        records=None, referenced: set[Path] | None = None) -> list[Document]:
    policy = policy or RecordPolicy()
    documents = []
    if records is None:
        records = json_records(path, decode_file(path, data_params.encoding), policy)
    for lineno, record in records:
        where = f"{path}: line {lineno}"
        text = record.get(data_params.text_field)
        file_name = record.get(data_params.text_file_field)
        if not isinstance(text, str) and isinstance(file_name, str):
            text_path = (path.parent / file_name)
            if not text_path.is_file():
                policy.bad(where, f"text file {file_name!r} not found next to {path.name}", "text_file_missing")
                continue
            text = decode_file(text_path, data_params.encoding)
            if referenced is not None:
                referenced.add(text_path.resolve())
        if not isinstance(text, str):
            policy.bad(where, f"missing text field {data_params.text_field!r} (data.text_field) or file field "
                              f"{data_params.text_file_field!r}", "missing_text")
            continue
        doc_id = f"{relative}:{record.get(data_params.id_field, lineno)}"
        title = record.get(data_params.title_field)
        domain = record.get(data_params.domain_field)
        documents.append(Document(doc_id=doc_id, title=title if isinstance(title, str) else None,
                                  domain=str(domain) if domain is not None else None,
                                  sections=[Section(text=text.strip(), title=title if isinstance(title, str) else None)]))
    return documents
