"""Plain text and Markdown documents: Markdown headings become section titles (heading → section pairs)."""
from __future__ import annotations

import re
from pathlib import Path

from bgetune.ingest.document import Document, Section, decode_file

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def read_text_document(path: Path, doc_id: str, domain: str | None, data_params, policy=None) -> Document:
    """A file name is not a title (nobody searches for "doc_017"): only Markdown headings give titles."""
    text = decode_file(path, data_params.encoding, policy)
    if path.suffix.lower() == ".txt":
        return Document(doc_id=doc_id, title=None, domain=domain, sections=[Section(text=text.strip(), title=None)])
    title = None
    sections: list[Section] = []
    heading, lines = None, []

    def flush():
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(text=body, title=heading))

    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            flush()
            heading, lines = match.group(2).strip(), []
            if title is None and len(match.group(1)) == 1:
                title = heading
        else:
            lines.append(line)
    flush()
    return Document(doc_id=doc_id, title=title, domain=domain, sections=sections)
