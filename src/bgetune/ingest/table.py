"""QA tables: CSV/TSV/XLSX files, JSON lists or JSONL of rows with a question and an answer column (pandas).

Each row becomes a document whose one passage is the answer and whose question is the row's query columns joined by
a newline; each non-empty line of the ``alt_queries`` columns (an FAQ's similar questions) is one more question for
the same answer, marked as an alternative. Column names come from ``data.qa_columns``, encodings from
``data.encoding`` ("auto" detects UTF-8 with or without BOM, else GB18030). A medical CSV such as meddialog's reads
with::

    data:
      encoding: auto
      qa_columns: {query: [title], answer: answer, domain: department}

A row with an empty answer is a bad record (error naming file and row, or counted under ``data.on_bad_record:
skip``); a row with an answer but no question is kept as a passage and counted.
"""
from __future__ import annotations

import io
from pathlib import Path

from bgetune.ingest.document import QA, Document, RecordPolicy, Section, decode_file
from bgetune.records import InputError

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx", ".xls")


def read_qa_table(path: Path, relative: str, data_params, policy: RecordPolicy | None = None,
                  rows: list[dict] | None = None, counts=None) -> list[Document]:
    """Documents from a QA table; ``rows`` (already parsed JSON objects) skips reading ``path``."""
    policy = policy or RecordPolicy()
    columns = data_params.qa_columns
    if rows is None:
        frame = _read_frame(path, data_params, policy)
        _require_columns(path, list(frame.columns), columns)
        # Row numbers as a spreadsheet shows them: the header is row 1.
        rows = [(f"{path}: row {i + 2}", record) for i, record in enumerate(frame.to_dict("records"))]
    documents = []
    for where, record in rows:
        answer = _cell(record.get(columns.answer))
        if not answer:
            policy.bad(where, f"empty answer column {columns.answer!r}", "empty_answer")
            continue
        query = "\n".join(c for c in (_cell(record.get(name)) for name in columns.query) if c)
        title = _cell(record.get(columns.title)) if columns.title else ""
        domain = _cell(record.get(columns.domain)) if columns.domain else ""
        row_id = _cell(record.get(columns.id)) if columns.id else ""
        doc_id = f"{relative}:{row_id or where.rsplit(' ', 1)[-1]}"
        qas = [QA(qid=f"{doc_id}:q", question=query)] if query else []
        alternatives = [line.strip() for name in columns.alt_queries
                        for line in _cell(record.get(name)).splitlines() if line.strip()]
        qas += [QA(qid=f"{doc_id}:alt{k}", question=text, alternative=True) for k, text in enumerate(alternatives)]
        if not qas and counts is not None:
            counts["row_without_question"] += 1
        documents.append(Document(doc_id=doc_id, title=title or None, domain=domain or None,
                                  sections=[Section(text=answer, title=title or None, qas=qas)]))
    return documents


def _read_frame(path: Path, data_params, policy: RecordPolicy):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls"):
        try:
            # .xlsx through openpyxl, legacy .xls through calamine (both pinned dependencies).
            frame = pd.read_excel(path, sheet_name=data_params.sheet, dtype=str, keep_default_na=False,
                                  engine="calamine" if suffix == ".xls" else "openpyxl")
        except Exception as err:  # openpyxl/xlrd raise many types for a broken workbook
            # pandas names a missing sheet ("Worksheet index 3 is invalid", "Worksheet named 'x' not found"): say
            # which param chose it.
            hint = f" (data.sheet: {data_params.sheet!r})" if "orksheet" in str(err) else ""
            raise InputError(f"{path}: cannot read workbook: {err}{hint}") from None
        return frame
    text = decode_file(path, data_params.encoding, policy)
    if not text.strip():
        raise InputError(f"{path}: empty file")
    separator = "\t" if suffix == ".tsv" else data_params.csv_separator

    def bad_line(fields):
        policy.bad(f"{path}", f"malformed CSV line with {len(fields)} fields", "malformed_csv_line")
        return None

    try:
        return pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False,
                           engine="python", on_bad_lines=bad_line if policy.on_bad_record == "skip" else "error")
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: malformed CSV: {err} (data.on_bad_record: skip to count and skip such lines)") from None


def _require_columns(path: Path, available: list[str], columns) -> None:
    wanted = [*columns.query, *columns.alt_queries, columns.answer] + [c for c in (columns.title, columns.domain,
                                                                                   columns.id) if c]
    missing = [c for c in wanted if c not in available]
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found; the file has {available} "
                         "(set data.qa_columns in params.yaml)")


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:   # NaN from an empty spreadsheet cell
        return ""
    return str(value).strip()
