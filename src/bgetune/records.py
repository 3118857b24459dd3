"""The record types that flow between stages, and their JSONL/JSON I/O.

Reading names the file and line of a bad record; writing goes to a temporary file that is renamed into place, so a
killed stage never leaves a half-written output behind.

Example::

    from bgetune.records import Passage, write_jsonl, read_jsonl
    write_jsonl("data/corpus.jsonl", [Passage(id="d1/p0", doc_id="d1", text="...", split="train")])
    for passage in read_passages("data/corpus.jsonl"):
        ...
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from bgetune.errors import BgetuneError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


class InputError(BgetuneError, ValueError):
    """Bad input data. The message always names the file, and the line or record where that applies."""


@dataclass
class Passage:
    id: str
    doc_id: str
    text: str
    split: str
    title: str | None = None
    domain: str | None = None


@dataclass
class Pair:
    qid: str
    query: str
    pos_ids: list[str]
    source: str  # existing | heuristic | llm | structure
    split: str = ""
    neg_ids: list[str] = field(default_factory=list)  # negatives given with the data (FlagEmbedding JSONL)


@dataclass
class TrainExample:
    """One query with its positives and mined negatives, in FlagEmbedding's JSONL format plus ids and strategies."""

    query: str
    pos: list[str]
    neg: list[str]
    qid: str = ""
    pos_ids: list[str] = field(default_factory=list)
    neg_ids: list[str] = field(default_factory=list)
    neg_strategies: list[str] = field(default_factory=list)
    pos_scores: list[float] | None = None
    neg_scores: list[float] | None = None

    def to_json(self) -> dict:
        record = dataclasses.asdict(self)
        return {k: v for k, v in record.items() if v is not None}


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on success rename it over ``path``, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; outputs are read like any other file (0644 under the usual umask).
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_jsonl(path: str | Path, records: Iterable[Any]) -> int:
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(_as_dict(record), ensure_ascii=False) + "\n")
            count += 1
    return count


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, sort_keys=False)
        handle.write("\n")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes, gunzipped when it ends in .gz; a missing or unreadable file is an InputError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read: {err.strerror}") from None
    if path.suffix == ".gz":
        import gzip
        import zlib

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(f"{path}: not a valid gzip file ({err})") from None
    return data


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """Read a text file, naming the file and line when its bytes are not valid in ``encoding``."""
    path = Path(path)
    data = read_bytes(path)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}: line {line}: not valid {encoding} (byte offset {err.start}); "
            "set data.encoding in params.yaml (e.g. gb18030) or re-save the file as UTF-8"
        ) from None


def read_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[dict]:
    """Yield one dict per non-empty line; a malformed line or a missing required key is an InputError."""
    for _, record in numbered_jsonl(path, required):
        yield record


def numbered_jsonl(path: str | Path, required: tuple[str, ...] = (), text: str | None = None
                   ) -> Iterator[tuple[int, dict]]:
    """Like read_jsonl, with each record's line number; ``text`` is the file already decoded (other encodings)."""
    path = Path(path)
    for lineno, line in enumerate((read_text(path) if text is None else text).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {lineno}: invalid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}: line {lineno}: expected a JSON object, got {type(record).__name__}")
        missing = [key for key in required if key not in record]
        if missing:
            raise InputError(f"{path}: line {lineno}: missing required field(s) {missing}")
        yield lineno, record


def read_passages(path: str | Path) -> list[Passage]:
    return _read_typed(Passage, path, ("id", "doc_id", "text", "split"))


def read_pairs(path: str | Path) -> list[Pair]:
    return _read_typed(Pair, path, ("qid", "query", "pos_ids", "source"))


def read_train_examples(path: str | Path) -> list[TrainExample]:
    return _read_typed(TrainExample, path, ("query", "pos", "neg"))


_STR_FIELDS = {"id", "doc_id", "text", "split", "qid", "query", "source"}
_STR_LIST_FIELDS = {"pos_ids", "neg_ids", "pos", "neg", "neg_strategies"}
_NUMBER_LIST_FIELDS = {"pos_scores", "neg_scores"}


def _type_problem(key: str, value: Any) -> str | None:
    """Why a field of an intermediate record has the wrong type (a corrupted or hand-edited file), or None."""
    if key in _STR_FIELDS and not isinstance(value, str):
        return f"field {key!r} must be a string, got {type(value).__name__}"
    if key in _STR_LIST_FIELDS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return f"field {key!r} must be a list of strings"
    if key in _NUMBER_LIST_FIELDS and value is not None and not (
            isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return f"field {key!r} must be a list of numbers"
    return None


def _read_typed(cls, path, required: tuple[str, ...]) -> list:
    known = {f.name for f in dataclasses.fields(cls)}
    records = []
    for lineno, record in numbered_jsonl(path, required):
        fields = {k: v for k, v in record.items() if k in known}
        problem = next((p for p in (_type_problem(k, v) for k, v in fields.items()) if p), None)
        if problem:
            raise InputError(f"{path}: line {lineno}: {problem}")
        records.append(cls(**fields))
    return records


def _as_dict(record: Any) -> dict:
    if hasattr(record, "to_json"):
        return record.to_json()
    if dataclasses.is_dataclass(record):
        return {k: v for k, v in dataclasses.asdict(record).items() if v is not None}
    return record


def project_path(root: str | Path, value: str | Path) -> Path:
    """A path from params, relative to the project root unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(root) / path
