"""What every bench result records — the commit measured, the device, the date, the command — and how it is written:
JSON beside a short Markdown table headed by that provenance.

Example::

    record = provenance("corpus_scale.py")          # {"command": ..., "commit": ..., "date": ..., "device": ...}
    record["rows"] = rows
    write_results(Path("bench/results"), "corpus_scale", record, table_lines)
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The checkout's short commit, or BGETUNE_COMMIT where it is set: a copy of the tree sent to another machine (a
    lent GPU machine) may carry no repository or an older one; "unknown" where neither says."""
    if os.environ.get("BGETUNE_COMMIT"):
        return os.environ["BGETUNE_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:     # no git program
        commit = ""
    return commit or "unknown"


def provenance(script: str) -> dict:
    commit = git_commit()
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"command": f"python bench/{script} " + " ".join(sys.argv[1:]), "commit": commit,
            "date": time.strftime("%Y-%m-%d"), "device": f"CPU: {cpu}, {cores} usable cores"}


def write_results(out: Path, stem: str, record: dict, table: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(f"`{record['command'].strip()}` — commit {record['commit']}, {record['device']}, "
                                    f"{record['date']}\n\n" + "\n".join(table) + "\n", encoding="utf-8")
    print("\n".join(table))
