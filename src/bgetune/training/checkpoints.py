"""Resumable checkpoints of a Trainer run: a folder tied to the params and inputs that made it (a fingerprint), its
half-written checkpoints removed, the last whole one found. The bi-encoder's trainer and the reranker's use it.

Example::

    resume = prepare_checkpoints(Path("models/checkpoints/train/stage1/trainer"), fingerprint)
    trainer.train(resume_from_checkpoint=resume)
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

log = logging.getLogger("bgetune")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def digest_files(digest, root: Path, files) -> None:
    """Feed each existing file's path (relative to ``root``) and bytes to ``digest``: the inputs part of a
    checkpoint fingerprint."""
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode())
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)


def prepare_checkpoints(directory: Path, fingerprint: str) -> str | None:
    """Make ``directory`` safe to resume from: discard it if made with other params or data, delete checkpoints a
    kill left half-written; return the last complete checkpoint, or None."""
    marker = directory / "fingerprint.json"
    if directory.exists():
        saved = None
        try:
            saved = json.loads(marker.read_text()).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            saved = None
        if saved != fingerprint:
            if any(directory.iterdir()):
                log.info("checkpoints in %s are from other params or data: starting fresh", directory)
            shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(json.dumps({"fingerprint": fingerprint}))
    complete = []
    for path in sorted(directory.iterdir()):
        match = _CHECKPOINT.match(path.name)
        if not match or not path.is_dir():
            continue
        if _complete(path):
            complete.append((int(match.group(1)), path))
        else:
            log.warning("removing %s: written only in part (the run was killed while saving it)", path)
            shutil.rmtree(path, ignore_errors=True)
    return str(max(complete)[1]) if complete else None


def last_complete_checkpoint(directory: Path) -> str | None:
    steps = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CHECKPOINT.match(p.name)) and _complete(p)] \
        if directory.is_dir() else []
    return str(max(steps)[1]) if steps else None


def _complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint with a readable one is whole."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    weights = (checkpoint / "model.safetensors").exists() or (checkpoint / "adapter_model.safetensors").exists()
    return weights and (checkpoint / "optimizer.pt").exists() and (checkpoint / "scheduler.pt").exists()


def clear_checkpoints(directory: str | Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
