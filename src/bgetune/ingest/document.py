"""The shape every reader produces, and decoding with a clear error."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bgetune.records import InputError


@dataclass
class QA:
    qid: str
    question: str
    answer_text: str | None = None
    answer_start: int | None = None  # character offset into the section text


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
