"""The shape every reader produces, decoding with a clear error, and the bad-record policy."""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from bgetune.records import InputError


@dataclass
class QA:
    qid: str
    question: str
    answer_text: str | None = None
    answer_start: int | None = None  # character offset into the section text
    extra_pos_docs: list[str] = field(default_factory=list)  # other documents that answer it (qrels, FlagEmbedding)
    neg_docs: list[str] = field(default_factory=list)        # documents given as negatives (FlagEmbedding JSONL)
    alternative: bool = False   # another wording from data.qa_columns.alt_queries (its pair: source existing_alt)


@dataclass
class Section:
    text: str
    title: str | None = None
    qas: list[QA] = field(default_factory=list)


@dataclass
class Document:
    doc_id: str
    sections: list[Section]
    title: str | None = None
    domain: str | None = None


def sections_under_headings(lines: Iterable[tuple[str, bool]]) -> list[Section]:
    """Sections from a document's lines in reading order, each ``(text, is_heading)``: a heading starts a section
    titled by it, lines before the first heading make an untitled one, and a heading with no text under it (or
    text that is only whitespace) makes none."""
    sections: list[Section] = []
    heading, body = None, []
    for text, is_heading in [*lines, (None, True)]:
        if not is_heading:
            body.append(text)
            continue
        joined = "\n".join(body).strip()
        if joined:
            sections.append(Section(text=joined, title=heading))
        heading, body = text, []
    return sections


DETECTABLE = ["gb18030", "big5", "big5hkscs", "shift_jis", "euc_jp", "euc_kr", "utf_16", "utf_32", "cp1252",
              "latin_1"]


def decode_file(path: Path, encoding: str, policy: "RecordPolicy | None" = None, data: bytes | None = None) -> str:
    """Decode a file (gunzipped first when it ends in .gz). ``utf-8`` accepts a BOM; ``auto`` takes UTF-8 when the
    bytes are valid UTF-8, else the encoding charset-normalizer detects (GB18030, Big5, Shift-JIS, …); any other
    name is that codec. The encoding used is recorded in ``policy.encodings``; an error names the file and the
    line of the first byte that is not valid. ``data``: the file's bytes when the caller has read them already."""
    from bgetune.records import read_bytes

    data = read_bytes(path) if data is None else data
    if encoding == "auto":
        text, used = _detect(path, data)
    else:
        used = "utf-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        try:
            text = data.decode("utf-8-sig" if used == "utf-8" else used)
        except LookupError:
            raise InputError(f"{path}: unknown encoding {encoding!r} (data.encoding in params.yaml)") from None
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: line {_line_of(data, err.start)}: not valid {encoding} (byte offset "
                             f"{err.start}); set data.encoding in params.yaml (e.g. gb18030 or auto) or re-save the "
                             "file as UTF-8") from None
    if policy is not None:
        policy.encodings[str(path)] = used
    return text


def _detect(path: Path, data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as err:
        first_bad = err.start
    import charset_normalizer

    matches = list(charset_normalizer.from_bytes(data, cp_isolation=DETECTABLE))
    if not matches:
        raise InputError(f"{path}: line {_line_of(data, first_bad)}: not valid UTF-8 (byte offset {first_bad}) and no "
                         "other encoding fits the file; set data.encoding in params.yaml to its codec")
    # Short Chinese texts decode without error in several CJK codecs: among the least chaotic readings, take the
    # one that reads as the most Han characters (GB18030 read as EUC-KR gives Hangul, Big5 read as GB18030 kana),
    # then the order of DETECTABLE (Chinese first).
    least = min(m.chaos for m in matches)
    close = [m for m in matches if m.chaos <= least + 0.05]
    order = {name: i for i, name in enumerate(DETECTABLE)}
    best = max(close, key=lambda m: (_han_share(str(m)), -order.get(m.encoding, len(order))))
    return str(best), best.encoding.replace("_", "-")


def _han_share(text: str) -> float:
    wide = [ch for ch in text if ord(ch) > 0x2FFF]
    return sum(1 for ch in wide if 0x4E00 <= ord(ch) <= 0x9FFF) / len(wide) if wide else 0.0


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def inside(root: Path, path: Path, where: str) -> Path:
    """``path`` resolved, refused unless it lies inside ``root`` (data.raw_dir): files named in records, and
    symbolic links, cannot make the pipeline read anything else."""
    resolved = Path(path).resolve()
    if resolved != root and root not in resolved.parents:
        raise InputError(f"{where}: {path} is outside data.raw_dir ({root}); files are read only from inside it")
    return resolved


log = logging.getLogger("bgetune")


@dataclass
class RecordPolicy:
    """What a malformed record does: ``error`` (default) stops with file and line; ``skip`` counts it by reason.

    Example::

        policy = RecordPolicy("skip")
        policy.bad("qa.csv: row 7", "empty answer", "empty_answer")   # counted in policy.skipped
    """

    on_bad_record: str = "error"
    skipped: Counter = field(default_factory=Counter)
    encodings: dict = field(default_factory=dict)   # file → the encoding it was read with

    def bad(self, where: str, message: str, reason: str) -> None:
        if self.on_bad_record != "skip":
            raise InputError(f"{where}: {message} (data.on_bad_record: skip to count and skip such records)")
        if sum(self.skipped.values()) < 20:
            log.warning("skipping %s: %s", where, message)
        self.skipped[reason] += 1


def json_records(path: Path, text: str, policy: RecordPolicy) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-empty JSONL line; a bad line goes through ``policy``."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            policy.bad(f"{path}: line {lineno}", f"invalid JSON: {err.msg}", "invalid_json")
            continue
        if not isinstance(record, dict):
            policy.bad(f"{path}: line {lineno}", f"expected a JSON object, got {type(record).__name__}", "not_an_object")
            continue
        yield lineno, record
