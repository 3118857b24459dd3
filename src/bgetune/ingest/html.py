"""HTML documents (.html, .htm — a saved or crawled knowledge base): ``<h1>``–``<h6>`` become section titles
(heading → section pairs, as Markdown headings do), block elements become lines, and what a reader of the page
never reads as its content is left out: everything outside ``<main>`` (or ``role="main"``; else outside the
``<article>`` elements) where the page has one, scripts, styles, ``<nav>`` menus, ``<footer>``, forms, and what
the page hides (``hidden``, ``aria-hidden``, menu, banner, sidebar and dialog roles).

Hand-written over the standard library's tolerant ``html.parser`` (which never fetches anything and accepts
broken markup): a page needs only its visible text and its headings, not a DOM library as a dependency.

The encoding is the one the page declares (a BOM, or ``<meta charset>`` in its first 2 KB), as a browser reads it;
otherwise ``data.encoding``.

Example::

    document = read_html_document(Path("data/raw/faq/blood-pressure.html"), "faq/blood-pressure.html", "faq",
                                  DataParams())
    document.title, [s.title for s in document.sections]   # "高血压问答", [None, "饮食", "用药"]
"""
from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from bgetune.ingest.document import Document, decode_file, sections_under_headings

# Elements whose text a reader does not read as the page's content.
# (<header> stays: inside an <article> it holds the article's own <h1>; a site banner's menu is a <nav>.)
SKIPPED = {"script", "style", "noscript", "template", "svg", "math", "head", "nav", "footer", "form", "button",
           "select", "iframe", "object"}
# Elements that end a line (the rest are inline: their text runs on).
BLOCKS = {"p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "section", "article", "main",
          "blockquote", "pre", "hr", "figure", "figcaption", "caption", "address", "details", "summary", "aside"}
CELLS = {"td", "th"}
HIDDEN_ROLES = {"navigation", "banner", "contentinfo", "search", "dialog", "alertdialog", "menu", "menubar",
                "complementary"}
HEADINGS = {f"h{n}": n for n in range(1, 7)}
MAX_TITLE_CHARS = 200
VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}
_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
# What pages declare, read as browsers read it (WHATWG): GB2312 and GBK pages are decoded as GBK, of which GB18030
# is a superset; ISO-8859-1 pages are windows-1252.
ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252", "latin1": "cp1252",
           "ascii": "cp1252", "us-ascii": "cp1252", "utf8": "utf-8"}


def declared_encoding(data: bytes) -> str | None:
    """The encoding a page declares: its byte-order mark, else ``<meta charset>`` (or http-equiv's content) in its
    first 2,048 bytes, as a browser's pre-scan finds it; None if it declares none."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    match = _DECLARED.search(data[:2048])
    if not match:
        return None
    name = match.group(1).decode("ascii").lower()
    name = ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except LookupError:
        return None   # a charset Python does not know: data.encoding decides, as if none were declared
    return name


def read_html_document(path: Path, doc_id: str, domain: str | None, data_params, policy=None) -> Document:
    from bgetune.records import read_bytes

    data = read_bytes(path)
    text = decode_file(path, declared_encoding(data) or data_params.encoding, policy, data)
    page = _PageText(content_scope(text))
    page.feed(text)
    page.close()
    return page.document(doc_id, domain)


def content_scope(page: str) -> str | None:
    """Where a page keeps its content, when it says: ``main`` (a ``<main>`` element, or ``role="main"``), else
    ``article`` (its ``<article>`` elements), else None (the whole ``<body>``). Outside it live the site's menus,
    sidebars and pop-ups, which no markup marks as chrome."""
    if re.search(r"<main[\s>]|\srole\s*=\s*[\"']?main\b", page, re.IGNORECASE):
        return "main"
    if re.search(r"<article[\s>]", page, re.IGNORECASE):
        return "article"
    return None


class _PageText(HTMLParser):
    """Collects the page's lines, split into sections at each heading; the title is the first ``<h1>``, else
    ``<title>``.

    An element is followed by counting only the opening and closing tags of its own name, so the ``<p>`` and
    ``<li>`` that HTML lets a page leave open do not unbalance it."""

    def __init__(self, scope: str | None = None):
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, bool]] = []   # (text, is_heading) in reading order
        self.line: list[str] = []
        self.scope = scope
        self.inside: tuple[str, int] | None = None   # the content element open now: its tag, its nesting depth
        self.skipped: tuple[str, int] | None = None  # the element whose text is left out: its tag, its depth
        self.heading: list[str] | None = None
        self.heading_level = 0
        self.page_title: list[str] | None = None
        self.title_text: str | None = None
        self.first_h1: str | None = None
        self.preformatted = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "title" and (self.skipped is None or self.skipped[0] == "head"):
            self.page_title = []
            return
        if self.skipped is not None:
            if tag == self.skipped[0]:
                self.skipped = (tag, self.skipped[1] + 1)
            return
        if tag not in VOID and (tag in SKIPPED or _hidden(attributes)):
            self.skipped = (tag, 1)
            return
        if self.inside is not None and tag == self.inside[0]:
            self.inside = (tag, self.inside[1] + 1)
        elif self.inside is None and self.scope is not None and _is_content(tag, attributes, self.scope):
            self.inside = (tag, 1)
        if not self.reading():
            return
        if self.heading is not None and (tag in HEADINGS or tag in BLOCKS and tag != "br"
                                         and "".join(self.heading).strip()):
            # A heading left open (broken markup) ends where the next heading or block of text starts; a block
            # that wraps the heading's own text (<h2><div>…</div></h2>) starts before any of it.
            self.end_heading()
        if tag in HEADINGS:
            self.end_line()
            self.heading, self.heading_level = [], HEADINGS[tag]
        elif tag in BLOCKS and self.heading is None:
            self.end_line()
            self.preformatted += tag == "pre"
        elif tag in BLOCKS:
            self.heading.append(" ")
        elif tag in CELLS and self.line:
            self.line.append(" ")
        elif tag == "img" and attributes.get("alt"):
            self.handle_data(attributes["alt"])

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag == "title" and self.page_title is not None:
            self.title_text = _collapse("".join(self.page_title)) or None
            self.page_title = None
            return
        if self.skipped is not None:
            if tag == self.skipped[0]:
                depth = self.skipped[1] - 1
                self.skipped = (tag, depth) if depth else None
            return
        if self.reading():
            if tag in HEADINGS:
                self.end_heading()
            elif tag in BLOCKS and self.heading is None:
                self.end_line()
                self.preformatted -= tag == "pre" and self.preformatted > 0
        if self.inside is not None and tag == self.inside[0]:
            depth = self.inside[1] - 1
            if not depth:
                self.end_heading()
                self.end_line()     # the content element's last line is its own
            self.inside = (tag, depth) if depth else None

    def handle_data(self, data):
        if self.page_title is not None:
            self.page_title.append(data)
        elif self.skipped is not None or not self.reading():
            return
        elif self.heading is not None:
            self.heading.append(data)
        elif self.preformatted:
            lines = data.split("\n")
            for line in lines[:-1]:
                self.line.append(line)
                self.end_line()
            self.line.append(lines[-1])
        else:
            self.line.append(data)

    def reading(self) -> bool:
        return self.scope is None or self.inside is not None

    def end_heading(self):
        if self.heading is None:
            return
        title = _collapse("".join(self.heading))
        self.heading = None
        if len(title) > MAX_TITLE_CHARS:   # a heading never closed ran on over the text: it is text, not a title
            self.blocks.append((title, False))
        elif title:
            self.blocks.append((title, True))
            if self.heading_level == 1 and self.first_h1 is None:
                self.first_h1 = title

    def end_line(self):
        line = "".join(self.line) if self.preformatted else _collapse("".join(self.line))
        if line.strip():
            self.blocks.append((line.rstrip(), False))
        self.line = []

    def document(self, doc_id: str, domain: str | None) -> Document:
        self.end_heading()
        self.end_line()
        sections = sections_under_headings(self.blocks)
        # The first <h1> before <title>: a page's <title> often carries the site's name too ("高血压 - 某某医院").
        return Document(doc_id=doc_id, title=self.first_h1 or self.title_text, domain=domain, sections=sections)


def _hidden(attributes: dict) -> bool:
    """Markup a page hides from its readers: ``hidden``, ``aria-hidden="true"``, or a landmark role that is not
    content (menus, banners, footers, search boxes, dialogs)."""
    return ("hidden" in attributes or (attributes.get("aria-hidden") or "").lower() == "true"
            or (attributes.get("role") or "").lower() in HIDDEN_ROLES)


def _is_content(tag: str, attributes: dict, scope: str) -> bool:
    if scope == "main":
        return tag == "main" or (attributes.get("role") or "").lower() == "main"
    return tag == "article"


def _collapse(text: str) -> str:
    """HTML's whitespace rule: every run of spaces and line breaks reads as one space."""
    return re.sub(r"\s+", " ", text).strip()
