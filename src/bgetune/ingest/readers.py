"""The document readers by file name: one place that says which reader reads a .md, .html, .docx or .pdf file,
whether the file lies in the raw folder or an article record names it.

Example::

    kind, document = read_document_file(Path("data/raw/faq/a.html"), "faq/a.html", "faq", DataParams(), policy,
                                        counts)   # "html", Document(...)
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import Document
from bgetune.ingest.docx import read_docx_document
from bgetune.ingest.html import read_html_document
from bgetune.ingest.pdf import read_pdf_document
from bgetune.ingest.text import read_text_document

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
DOCUMENT_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + (".docx", ".pdf")


def kind_of(path: Path) -> str:
    """The file's format family by its name: .jsonl.gz → .jsonl."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def read_document_file(path: Path, doc_id: str, domain: str | None, data_params, policy,
                       counts: Counter | None) -> tuple[str, Document] | None:
    """(reader name, document) for a text, Markdown, HTML, Word or PDF file; None for any other kind."""
    kind = kind_of(path)
    if kind in TEXT_SUFFIXES:
        return "text", read_text_document(path, doc_id, domain, data_params, policy)
    if kind in HTML_SUFFIXES:
        return "html", read_html_document(path, doc_id, domain, data_params, policy)
    if kind == ".docx":
        return "docx", read_docx_document(path, doc_id, domain, data_params, policy, counts)
    if kind == ".pdf":
        return "pdf", read_pdf_document(path, doc_id, domain, data_params, policy, counts)
    return None
