"""Plain text and Markdown documents: Markdown headings become section titles (heading → section pairs)."""
from __future__ import annotations

import re
from pathlib import Path

from bgetune.ingest.document import Document, Section, decode_file, sections_under_headings

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def read_text_document(path: Path, doc_id: str, domain: str | None, data_params, policy=None) -> Document:
    """A file name is not a title (nobody searches for "doc_017"): only Markdown headings give titles."""
    text = decode_file(path, data_params.encoding, policy)
    if path.name.lower().removesuffix(".gz").endswith(".txt"):
        return Document(doc_id=doc_id, title=None, domain=domain, sections=[Section(text=text.strip(), title=None)])
    lines, title = [], None
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match and title is None and len(match.group(1)) == 1:
            title = match.group(2).strip()
        lines.append((match.group(2).strip(), True) if match else (line, False))
    return Document(doc_id=doc_id, title=title, domain=domain, sections=sections_under_headings(lines))
