"""Word documents (.docx): paragraphs in Heading styles (or with an outline level) become section titles — heading →
section pairs, as Markdown headings do — and the Title style (else the first Heading 1) the document's title.
Tables read row by row, cells joined by `` | ``; tracked deletions are left out, insertions kept; a table of
contents (its block, or lines in "TOC" styles: copies of the headings with page numbers) is counted and left out.

Hand-written over the standard library (``zipfile`` and ``xml.etree``): a .docx is a zip of WordprocessingML, and
reading its text and heading levels needs two of its parts, not a document library as a dependency. A
Chinese Word template names its heading styles by number (``styleId`` "1", name "heading 1"), so levels are read
from word/styles.xml by name and outline level, following ``basedOn`` for styles derived from a heading.

Example::

    document = read_docx_document(Path("data/raw/guides/hypertension.docx"), "guides/hypertension.docx",
                                  "guides", DataParams())
    document.title, [s.title for s in document.sections]   # "高血压防治指南", ["高血压防治指南", "诊断", "治疗"]
"""
from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

from bgetune.ingest.document import Document, sections_under_headings
from bgetune.records import InputError

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# A part bigger than this is refused rather than inflated into memory (a zip bomb, or not a document of text).
MAX_PART_BYTES = 256 * 2**20
BODY_TEXT = 9        # w:outlineLvl 9: body text (0–8 are heading levels 1–9)
TITLE = 0            # our level for the Title style: the document's title, and a section heading like level 1
CONTENTS = -1        # our level for a table of contents' line (a "toc N" style): a copy of a heading, left out
_HEADING_NAME = re.compile(r"^heading\s*(\d)$")
_CONTENTS_NAME = re.compile(r"^toc\s*\d$")


def read_docx_document(path: Path, doc_id: str, domain: str | None, data_params=None, policy=None,
                       counts: Counter | None = None) -> Document:
    from bgetune.records import read_bytes

    counts = counts if counts is not None else Counter()
    try:
        archive = zipfile.ZipFile(io.BytesIO(read_bytes(path)))
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a Word .docx file (not a zip archive); save an old .doc as .docx") from None
    with archive:
        body = _part(archive, path, "word/document.xml")
        styles = _part(archive, path, "word/styles.xml") if "word/styles.xml" in archive.namelist() else None
    levels = heading_levels(styles, path) if styles is not None else {}
    blocks = list(_blocks(_body(body, path, "word/document.xml"), levels, counts))
    title = next((text for text, level in blocks if level == TITLE), None) or \
        next((text for text, level in blocks if level == 1), None)
    sections = sections_under_headings((text, level is not None) for text, level in blocks)
    return Document(doc_id=doc_id, title=title, domain=domain, sections=sections)


def heading_levels(styles_xml: bytes, path: Path | str = "") -> dict[str, int]:
    """Paragraph style id → heading level (1–9; 0 for Title; -1 for a table of contents' "toc N" styles), from
    word/styles.xml: by the style's name (``heading 2``, ``Title``) or its outline level, inherited through
    ``basedOn``."""
    root = _parse(styles_xml, path, "word/styles.xml")
    own: dict[str, int | None] = {}
    based_on: dict[str, str] = {}
    for style in root.iter(f"{W}style"):
        if style.get(f"{W}type") != "paragraph" or not style.get(f"{W}styleId"):
            continue
        style_id = style.get(f"{W}styleId")
        name = (_val(style.find(f"{W}name")) or "").strip().lower()
        outline = _val(style.find(f"{W}pPr/{W}outlineLvl"))
        match = _HEADING_NAME.match(name)
        if name == "title":
            own[style_id] = TITLE
        elif _CONTENTS_NAME.match(name):
            own[style_id] = CONTENTS
        elif match and match.group(1) != "0":
            own[style_id] = int(match.group(1))
        elif outline is not None and outline.isdigit() and int(outline) < BODY_TEXT:
            own[style_id] = int(outline) + 1
        else:
            own[style_id] = None
        parent = _val(style.find(f"{W}basedOn"))
        if parent:
            based_on[style_id] = parent
    levels = {}
    for style_id in own:
        seen, current = set(), style_id
        while current is not None and own.get(current) is None and current not in seen:   # a cycle ends it
            seen.add(current)
            current = based_on.get(current)
        if current is not None and own.get(current) is not None:
            levels[style_id] = own[current]
    return levels


def _blocks(body, levels: dict[str, int], counts: Counter):
    """(text, heading level or None) of each paragraph and table row in reading order; a table of contents' lines
    are counted (``docx_table_of_contents_lines``) and left out."""
    for element in body:
        if element.tag == f"{W}p":
            text = _paragraph_text(element).strip()
            level = _paragraph_level(element, levels)
            if text and level == CONTENTS:
                counts["docx_table_of_contents_lines"] += 1
            elif text:
                yield text, level
        elif element.tag == f"{W}tbl":
            for row in element.iter(f"{W}tr"):
                cells = [" ".join(t for t in (_paragraph_text(p).strip() for p in cell.iter(f"{W}p")) if t)
                         for cell in row.findall(f"{W}tc")]
                if any(cells):
                    yield " | ".join(cells), None
        elif element.tag == f"{W}sdt":      # a content control (a cover page, a table of contents block)
            content = element.find(f"{W}sdtContent")
            gallery = _val(element.find(f"{W}sdtPr/{W}docPartObj/{W}docPartGallery"))
            if content is not None and gallery == "Table of Contents":
                counts["docx_table_of_contents_lines"] += sum(
                    1 for p in content.iter(f"{W}p") if _paragraph_text(p).strip())
            elif content is not None:
                yield from _blocks(content, levels, counts)


def _paragraph_level(paragraph, levels: dict[str, int]) -> int | None:
    properties = paragraph.find(f"{W}pPr")
    if properties is None:
        return None
    outline = _val(properties.find(f"{W}outlineLvl"))   # set on the paragraph itself, over its style's
    if outline is not None and outline.isdigit():
        return int(outline) + 1 if int(outline) < BODY_TEXT else None
    style = _val(properties.find(f"{W}pStyle"))
    if style is None:
        return None
    if style in levels:
        return levels[style]
    name = style.lower()   # no styles.xml: Word's English style ids (Heading1, Title, TOC1)
    match = _HEADING_NAME.match(name)
    if match and match.group(1) != "0":
        return int(match.group(1))
    return TITLE if name == "title" else CONTENTS if _CONTENTS_NAME.match(name) else None


def _paragraph_text(paragraph) -> str:
    parts = []
    for node in paragraph.iter():
        if node.tag == f"{W}t":
            parts.append(node.text or "")
        elif node.tag == f"{W}tab":
            parts.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
        elif node.tag == f"{W}noBreakHyphen":
            parts.append("-")
    return "".join(parts)


def _val(element) -> str | None:
    return None if element is None else element.get(f"{W}val")


def _part(archive: zipfile.ZipFile, path: Path, name: str) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputError(f"{path}: not a Word .docx file (no {name} inside the zip)") from None
    if info.file_size > MAX_PART_BYTES:
        raise InputError(f"{path}: {name} is {info.file_size / 2**20:.0f} MiB uncompressed, over the "
                         f"{MAX_PART_BYTES // 2**20} MiB a document's text may take")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{path}: {name}: cannot be read from the zip ({err})") from None


def _body(document_xml: bytes, path: Path, name: str):
    body = _parse(document_xml, path, name).find(f"{W}body")
    if body is None:
        raise InputError(f"{path}: {name}: no w:body element (not a Word document)")
    return body


def _parse(xml: bytes, path, name: str):
    # xml.etree never fetches external entities, and the expat it runs on (≥ 2.4) stops entity-expansion bombs.
    try:
        return ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:   # its message names the line and column
        raise InputError(f"{path}: {name}: invalid XML: {err}") from None
