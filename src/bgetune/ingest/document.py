"""The shape every reader produces, decoding with a clear error, and the bad-record policy."""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from bgetune.records import InputError


@dataclass
class QA:
    qid: str
    question: str
    answer_text: str | None = None
    answer_start: int | None = None  # character offset into the section text
    extra_pos_docs: list[str] = field(default_factory=list)  # other documents that answer it (qrels, FlagEmbedding)
    neg_docs: list[str] = field(default_factory=list)        # documents given as negatives (FlagEmbedding JSONL)


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


def decode_file(path: Path, encoding: str) -> str:
    """Decode a file; "utf-8" accepts a BOM, "auto" tries UTF-8 then GB18030; errors name the file and line."""
    data = Path(path).read_bytes()
    candidates = ["utf-8-sig", "gb18030"] if encoding == "auto" else ["utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding]
    last = None
    for codec in candidates:
        try:
            return data.decode(codec)
        except UnicodeDecodeError as err:
            last = err
        except LookupError:
            raise InputError(f"{path}: unknown encoding {encoding!r} (data.encoding in params.yaml)") from None
    line = data[: last.start].count(b"\n") + 1
    raise InputError(
        f"{path}: line {line}: not valid {encoding} (byte offset {last.start}); "
        "set data.encoding in params.yaml (e.g. gb18030 or auto) or re-save the file as UTF-8"
    )


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
