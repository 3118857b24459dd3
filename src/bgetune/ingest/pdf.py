"""PDF documents with a text layer, read by pypdf: the outline (bookmarks) gives section titles — heading → section
pairs, as Markdown headings do — lines a page wrapped are joined again, and running headers and footers (a title or
page number on every page) are left out.

- **Wrapped lines**: a line at least 3/4 as wide as the document's full lines that does not end a sentence
  continues on the next (Chinese without a space, Latin with one, a word hyphenated at the break rejoined); a
  short line — a heading, a paragraph's last — ends where it ends. Unjoined, every line of a page would read as a
  sentence of its own.
- **Running headers and footers**: a line (digits read alike, so page numbers match) among the first or last two
  of at least 60% of the pages of a document of 3 or more pages.
- **Pages without text** (a scan): counted in ``results/data.json`` and named in the log; OCR them first
  (``ocrmypdf``) to include them.

A password-protected PDF pypdf cannot open with the empty password, or a damaged one, stops with one line naming
the file.

Example::

    document = read_pdf_document(Path("data/raw/guides/hypertension.pdf"), "guides/hypertension.pdf", "guides",
                                 DataParams(), counts=Counter())
    [s.title for s in document.sections]   # [None, "第一章 总则", "第二章 诊断", …] from the bookmarks
"""
from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections import Counter
from pathlib import Path

from bgetune.ingest.document import Document, sections_under_headings
from bgetune.records import InputError

log = logging.getLogger("bgetune")
SENTENCE_ENDS = "。！？!?；;：:…”」』）)"
FULL_LINE_SHARE = 0.75        # of the document's full line width (its 90th percentile)
EDGE_LINES = 2                # lines at each end of a page where running headers and footers live
RUNNING_SHARE = 0.6           # of the pages a line must be found on to be a running header or footer
MIN_PAGES_FOR_RUNNING = 3
_NUMBERING = re.compile(r"^(\d+(\.\d+)*\.?|第[〇一二三四五六七八九十百零\d]+[章节条篇部分]+|[一二三四五六七八九十]+、)$")


def read_pdf_document(path: Path, doc_id: str, domain: str | None, data_params=None, policy=None,
                      counts: Counter | None = None) -> Document:
    from bgetune.records import read_bytes

    counts = counts if counts is not None else Counter()
    pages, outline, title = _read(path, read_bytes(path))
    blank = [n + 1 for n, text in enumerate(pages) if not text.strip()]
    if blank:
        counts["pdf_pages_without_text"] += len(blank)
        log.warning("%s: %d of %d page(s) have no text layer (pages %s; a scan?): run OCR on it (e.g. ocrmypdf) to "
                    "include them", path, len(blank), len(pages), ", ".join(map(str, blank[:10])) +
                    (" …" if len(blank) > 10 else ""))
    page_lines = [[line.strip() for line in text.splitlines() if line.strip()] for text in pages]
    page_lines, dropped = without_running_lines(page_lines)
    if dropped:
        counts["pdf_running_header_lines"] += dropped
    lines = [(n, line) for n, page in enumerate(page_lines) for line in page]
    marks, unplaced = outline_marks(lines, outline)
    if unplaced:
        counts["pdf_outline_items_without_page"] += unplaced
    width = full_line_width([line for _, line in lines])
    blocks: list[tuple[str, bool]] = []
    # Each stretch of lines between two bookmarks (the first: before any) is one section's body, unwrapped apart.
    for (start, heading, is_heading_line), (end, _, _) in zip([(0, None, False)] + marks,
                                                              marks + [(len(lines), None, False)]):
        if heading is not None:
            blocks.append((heading, True))
        body = [line for _, line in lines[start + is_heading_line:end]]
        blocks.extend((line, False) for line in unwrap(body, width))
    return Document(doc_id=doc_id, title=title, domain=domain, sections=sections_under_headings(blocks))


def _read(path: Path, data: bytes) -> tuple[list[str], list[tuple[str, int | None]], str | None]:
    """Each page's text, the outline flattened in order as (title, page index or None), and a title from the
    metadata when it is one (not a file name or an editor's placeholder)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError

    # pypdf warns of each damaged object it recovers from, many lines per file; what the user needs is the one line
    # below when the file cannot be read, and the counts when it can.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError(f"{path}: the PDF is password-protected; decrypt it (e.g. qpdf --decrypt) to include it")
        if len(reader.pages) == 0:
            raise InputError(f"{path}: not a readable PDF (no pages found)")
        pages = [page.extract_text() or "" for page in reader.pages]
        outline = [(str(item.title).strip(), _page_of(reader, item)) for item in _flatten(reader.outline)]
        title = _metadata_title(reader)
    except InputError:
        raise
    except FileNotDecryptedError:
        raise InputError(f"{path}: the PDF is password-protected; decrypt it (e.g. qpdf --decrypt) to include "
                         "it") from None
    except Exception as err:   # a damaged file fails anywhere inside pypdf; the user needs the file, not its stack
        raise InputError(f"{path}: not a readable PDF ({type(err).__name__}: {err})") from None
    return pages, [(t, p) for t, p in outline if t], title


def _flatten(outline) -> list:
    items = []
    for item in outline or []:
        items.extend(_flatten(item) if isinstance(item, list) else [item])   # a list holds the children
    return items


def _page_of(reader, item) -> int | None:
    try:
        page = reader.get_destination_page_number(item)
    except Exception:   # a bookmark to a missing page or an external file
        return None
    return page if page is not None and 0 <= page < len(reader.pages) else None


def _metadata_title(reader) -> str | None:
    title = (reader.metadata.title if reader.metadata else None) or ""
    title = str(title).strip()
    if not title or re.search(r"\.(docx?|wps|pdf|pptx?|txt|xlsx?)$|^(untitled|无标题|microsoft word)", title, re.I):
        return None
    return title


def outline_marks(lines: list[tuple[int, str]], outline: list[tuple[str, int | None]]
                  ) -> tuple[list[tuple[int, str, bool]], int]:
    """Where each bookmark starts in the document's lines: (line index, title, whether that line is the heading
    itself), in reading order; a bookmark whose page's lines do not show its title starts at the page's first
    line. Also the count of bookmarks without a page."""
    marks, unplaced, cursor = [], 0, 0
    for title, page in outline:
        if page is None:
            unplaced += 1
            continue
        key = _squeezed(title)
        on_page = [i for i in range(cursor, len(lines)) if lines[i][0] == page]
        after = [i for i in range(cursor, len(lines)) if lines[i][0] >= page]
        found = next((i for i in on_page if key and _shows_title(_squeezed(lines[i][1]), key)), None)
        if found is not None:
            marks.append((found, title, _is_title_line(_squeezed(lines[found][1]), key)))
            cursor = found + 1
        else:
            position = after[0] if after else len(lines)
            marks.append((position, title, False))
            cursor = position
    return marks, unplaced


def _is_title_line(line: str, key: str) -> bool:
    """The line is the bookmark's heading: its title, perhaps after its number (``2.1``, ``第三章``)."""
    return line == key or (line.endswith(key) and bool(_NUMBERING.match(line[:-len(key)])))


def _shows_title(line: str, key: str) -> bool:
    return _is_title_line(line, key) or line.startswith(key)


def without_running_lines(pages: list[list[str]]) -> tuple[list[list[str]], int]:
    """Pages without the lines that repeat at the page edges of most pages (running titles, page numbers)."""
    if len(pages) < MIN_PAGES_FOR_RUNNING:
        return pages, 0
    seen = Counter()
    for lines in pages:
        seen.update({_shape(line) for line in lines[:EDGE_LINES] + lines[-EDGE_LINES:]})
    running = {shape for shape, n in seen.items() if n >= RUNNING_SHARE * len(pages)}
    kept, dropped = [], 0
    for lines in pages:
        edge = set(range(min(EDGE_LINES, len(lines)))) | set(range(max(0, len(lines) - EDGE_LINES), len(lines)))
        page = [line for i, line in enumerate(lines) if not (i in edge and _shape(line) in running)]
        dropped += len(lines) - len(page)
        kept.append(page)
    return kept, dropped


def full_line_width(lines: list[str]) -> float:
    """The display width of a full line: the 90th percentile of the document's line widths."""
    widths = sorted(display_width(line) for line in lines)
    return widths[int(0.9 * (len(widths) - 1))] if widths else 0.0


def unwrap(lines: list[str], width: float) -> list[str]:
    """Lines a page wrapped joined back into paragraphs (see the module's docstring)."""
    paragraphs: list[str] = []
    last = ""   # the physical line the current paragraph ends with: whether it was full decides
    for line in lines:
        if last and display_width(last) >= FULL_LINE_SHARE * width and last[-1] not in SENTENCE_ENDS:
            if last[-1] == "-" and len(last) > 1 and last[-2].isalpha() and line[0].islower():
                paragraphs[-1] = paragraphs[-1][:-1] + line    # a word the typesetter hyphenated: man- agement
            else:
                paragraphs[-1] += ("" if _is_wide(last[-1]) or _is_wide(line[0]) else " ") + line
        else:
            paragraphs.append(line)
        last = line
    return paragraphs


def display_width(text: str) -> int:
    """Columns on the page: a Chinese character or full-width sign takes two, a Latin letter one."""
    return sum(2 if _is_wide(ch) else 1 for ch in text)


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", _squeezed(line))
