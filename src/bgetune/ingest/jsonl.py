"""Articles: JSONL, or a JSON list, of records with a text field (names configurable in params.data).

The text may also live in a file beside the metadata: a record with ``data.text_file_field`` (default ``file``)
instead of the text field reads that file — resolved and refused unless it lies inside ``data.raw_dir``, so a
record cannot make the pipeline read (or send to an LLM) anything else.

Example::

    documents = read_articles(path, "articles.jsonl", DataParams(), policy, records, referenced=set(), top=root)
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import Document, RecordPolicy, Section, decode_file, inside
from bgetune.ingest.readers import read_document_file
from bgetune.records import InputError


def read_articles(path: Path, relative: str, data_params, policy: RecordPolicy, records,
                  referenced: set[Path] | None, top: Path, counts: Counter | None = None) -> list[Document]:
    """``records``: (where, object) pairs — "line 3" for JSONL, "record [2]" for a JSON list. A file a record
    names is read by its format's reader (Markdown, HTML, Word and PDF keep their headings as section titles);
    the record's title and domain win over the file's."""
    documents = []
    for where_in_file, record in records:
        where = f"{path}: {where_in_file}"
        text = record.get(data_params.text_field)
        file_name = record.get(data_params.text_file_field)
        from_file = None   # the document a named .txt/.md/.html/.docx/.pdf file reads as
        if not isinstance(text, str) and isinstance(file_name, str):
            try:
                text_path = inside(top, path.parent / file_name, where)
            except InputError:
                policy.bad(where, f"text file {file_name!r} is outside data.raw_dir ({top}); files are read only "
                                  "from inside it", "text_file_outside_raw_dir")
                continue
            if not text_path.is_file():
                policy.bad(where, f"text file {file_name!r} not found next to {path.name}", "text_file_missing")
                continue
            if referenced is not None:
                referenced.add(text_path)
            read = read_document_file(text_path, text_path.name, None, data_params, policy, counts)
            if read is not None:
                from_file = read[1]
            else:
                text = decode_file(text_path, data_params.encoding, policy)   # any other name: plain text
        if from_file is None and not isinstance(text, str):
            policy.bad(where, f"missing text field {data_params.text_field!r} (data.text_field) or file field "
                              f"{data_params.text_file_field!r} (data.text_file_field)", "missing_text")
            continue
        key = record.get(data_params.id_field, where_in_file.split()[-1].strip("[]"))
        title = record.get(data_params.title_field)
        domain = record.get(data_params.domain_field)
        title = title if isinstance(title, str) and title.strip() else (from_file.title if from_file else None)
        sections = from_file.sections if from_file else [Section(text=text.strip(), title=title)]
        documents.append(Document(doc_id=f"{relative}:{key}", title=title,
                                  domain=str(domain) if domain is not None else None, sections=sections))
    return documents

