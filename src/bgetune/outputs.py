"""A stage's outputs appear together or not at all.

Every output is first written into a staging folder (``.bgetune/staging/<stage>/``, on the same filesystem as the
repository, so moving is a rename). When all of them are written, a journal listing the moves is committed
(written and renamed into place, so it exists whole or not at all) and the outputs are renamed over their targets.
A kill at any moment leaves one of two states, both repaired by ``recover()`` at the next stage start:

- no committed journal: the stage never finished; the staging folder (and any temp file in it) is deleted and
  the targets are untouched;
- a committed journal: the stage finished; the remaining renames are completed.

Example::

    with StageOutputs("split", ["data/corpus.jsonl", "data/splits.json"]) as out:
        write_jsonl(out.path("data/corpus.jsonl"), passages)
        write_json(out.path("data/splits.json"), assignment)
    # both files are now in place, or (after an exception or a kill) neither was changed
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger("bgetune")
STATE_DIR = ".bgetune"
JOURNAL = "journal.json"


class StageOutputs:
    def __init__(self, stage: str, targets: list[str | Path], root: str | Path = ".", enabled: bool = True):
        self.stage, self.root = stage, Path(root)
        self.targets = [Path(t) for t in targets]
        self.enabled = enabled   # under torchrun only the main process commits
        self.staging = self.root / STATE_DIR / "staging" / _safe(stage)

    def __enter__(self) -> "StageOutputs":
        shutil.rmtree(self.staging, ignore_errors=True)
        (self.staging / "new").mkdir(parents=True, exist_ok=True)
        return self

    def path(self, target: str | Path) -> Path:
        """Where to write ``target`` (a file or a folder) while the stage runs."""
        target = Path(target)
        if target not in self.targets:
            raise KeyError(f"{target} is not a declared output of stage {self.stage}")
        staged = self.staging / "new" / str(self.targets.index(target))
        return staged if _is_dir_like(target) else staged / target.name

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None or not self.enabled:
            shutil.rmtree(self.staging, ignore_errors=True)
            return
        moves = []
        for index, target in enumerate(self.targets):
            staged = self.path(target)
            if not staged.exists():
                shutil.rmtree(self.staging, ignore_errors=True)
                raise RuntimeError(f"stage {self.stage} did not write its output {target}")
            moves.append([str(staged), str(self.root / target), str(self.staging / "old" / str(index))])
        journal = self.staging / JOURNAL
        tmp = journal.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stage": self.stage, "moves": moves}))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, journal)          # the commit point
        _apply(self.staging)


def _is_dir_like(target: Path) -> bool:
    return target.suffix == "" or target.name.endswith("/")


def _safe(stage: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stage)


def _apply(staging: Path) -> None:
    journal = json.loads((staging / JOURNAL).read_text())
    for new, target, old in journal["moves"]:
        new, target, old = Path(new), Path(target), Path(old)
        if not new.exists():
            continue   # moved before a kill
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            old.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
            os.replace(target, old)
        os.replace(new, target)
    shutil.rmtree(staging, ignore_errors=True)


def recover(root: str | Path = ".") -> list[str]:
    """Finish committed output sets and discard uncommitted ones; returns what was done, one line each."""
    done = []
    base = Path(root) / STATE_DIR / "staging"
    if not base.is_dir():
        return done
    for staging in sorted(p for p in base.iterdir() if p.is_dir()):
        journal = staging / JOURNAL
        valid = False
        if journal.exists():
            try:
                json.loads(journal.read_text())
                valid = True
            except ValueError:
                valid = False
        if valid:
            _apply(staging)
            done.append(f"completed the outputs of an interrupted {staging.name} stage")
        else:
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"discarded the partial outputs of an interrupted {staging.name} stage")
    for line in done:
        log.warning(line)
    return done


def remove_stale_temp_files(folder: str | Path) -> int:
    """Delete ``.name.*.tmp`` files that atomic writes left behind when killed; returns how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    count = 0
    for path in folder.rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            count += 1
    return count
