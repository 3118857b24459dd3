"""Text work spread over CPU processes: jieba's segmentation and keyword extraction of a large corpus.

jieba is pure Python and holds the GIL, so one process segments about 200,000 characters a second: a 70,000-passage
corpus (260 characters each) costs 1.5 minutes per pass, and mining, vocab and qa-gen each make one, which a GPU
does not shorten (bench/text_workers.py). ``map_texts`` cuts the texts into ordered chunks and maps a function over
them in worker processes; the result is the serial one, item for item, whatever the number of workers.

The workers are *spawned* (a fresh interpreter each), not forked: a stage that has loaded torch holds threads, and a
forked child of a threaded process may deadlock. Spawned workers re-import the main module, so every stage script
and bench keeps its work under ``if __name__ == "__main__"``; where a caller's script does not, the work stays in
its process, with a warning (``main_is_guarded``), and a pool that fails all the same falls back to serial. The
number of processes is not a param — it does not change a result, and a param would make DVC re-run a stage for it:
``BGETUNE_CPU_WORKERS`` sets it (default: the CPU cores this process may use, at most 8; each worker holds jieba's
dictionary, ~200 MB); ``BGETUNE_CPU_WORKERS=1`` keeps everything in one process. Small inputs stay serial: starting
a worker costs about a second.

Example::

    from bgetune.text import content_tokens
    tokens = map_texts(content_tokens, passage_texts, "jieba words of the passages")   # == [content_tokens(t) ...]
"""
from __future__ import annotations

import ast
import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
# Below this many characters a pool costs more than it saves (jieba: ~200k characters a second per process; a
# spawned worker is ready in ~1.5 s).
PARALLEL_MIN_CHARS = 2_000_000
MAX_DEFAULT_WORKERS = 8


def _whole_number(variable: str, least: int) -> int | None:
    configured = os.environ.get(variable, "").strip()
    if not configured:
        return None
    if not configured.isdigit() or int(configured) < least:
        from bgetune.errors import BgetuneError

        raise BgetuneError(f"environment variable {variable}={configured!r}: a whole number ≥ {least}")
    return int(configured)


def check_environment_settings() -> None:
    """``BGETUNE_CPU_WORKERS`` and ``BGETUNE_PARALLEL_MIN_CHARS``, checked before a stage starts its work."""
    cpu_workers()
    parallel_min_chars()


def parallel_min_chars() -> int:
    """The total length below which text work stays in this process: ``BGETUNE_PARALLEL_MIN_CHARS`` (0 sends even
    a tiny project to the workers, as the tests do), or ``PARALLEL_MIN_CHARS``."""
    configured = _whole_number("BGETUNE_PARALLEL_MIN_CHARS", 0)
    return PARALLEL_MIN_CHARS if configured is None else configured


def cpu_workers() -> int:
    """Worker processes for CPU-bound text work: ``BGETUNE_CPU_WORKERS``, or the usable cores up to 8."""
    configured = _whole_number("BGETUNE_CPU_WORKERS", 1)
    if configured is not None:
        return configured
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


@functools.lru_cache(maxsize=1)
def main_is_guarded() -> bool:
    """Whether spawned workers may import the main script: it keeps its work under ``if __name__ == "__main__"``
    (or there is no script: an interactive session, ``python -c``). A script without the guard would run again in
    every worker, so its text work stays in this process, and the log says why once."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    path = getattr(spec, "origin", None) or getattr(main, "__file__", None)
    if not path:
        return True
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        guarded = False
    else:
        guarded = any(isinstance(node, ast.If) and _tests_main(node.test) for node in tree.body)
    if not guarded:
        log.warning("%s has no `if __name__ == \"__main__\"` guard, which worker processes need (they import the "
                    "script again): jieba's text work stays in this process", path)
    return guarded


def _tests_main(test: ast.expr) -> bool:
    # `__name__ == "__main__"`, either way round
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, *test.comparators]
    return (any(isinstance(side, ast.Name) and side.id == "__name__" for side in sides)
            and any(isinstance(side, ast.Constant) and side.value == "__main__" for side in sides))


def _apply(function: Callable[[str], T], chunk: list[str]) -> list[T]:
    return [function(text) for text in chunk]


def map_texts(function: Callable[[str], T], texts: list[str], what: str, workers: int | None = None,
              min_chars: int | None = None) -> list[T]:
    """``[function(t) for t in texts]``, over worker processes when the texts are large enough.

    ``function`` must be importable by name — a module-level function or a ``functools.partial`` of one — and
    set up what it needs itself (each worker is a fresh interpreter). ``what`` says what is done, for the log lines.
    ``min_chars``: the total length below which the work stays in this process (default: ``parallel_min_chars()``).
    """
    workers = cpu_workers() if workers is None else workers
    if sum(map(len, texts)) < (parallel_min_chars() if min_chars is None else min_chars):
        return [function(text) for text in texts]
    spread = workers >= 2 and len(texts) >= 2 * workers and main_is_guarded()
    # long work says it has begun, and how long it took
    log.info("%s: %d texts %s …", what, len(texts), f"over {workers} processes" if spread else "in this process")
    started = time.perf_counter()
    results = _over_processes(function, texts, workers, what) if spread else None
    if results is None:
        results = [function(text) for text in texts]
    log.info("%s: done in %.1f s", what, time.perf_counter() - started)
    return results


def _over_processes(function: Callable[[str], T], texts: list[str], workers: int, what: str) -> list[T] | None:
    """The results from ``workers`` spawned processes, or None (with a warning) when the pool breaks."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Four chunks per worker: an uneven chunk (long passages together) delays the end by a quarter of a share.
    size = -(-len(texts) // (4 * workers))
    chunks = [texts[start:start + size] for start in range(0, len(texts), size)]
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return [item for chunk in pool.map(functools.partial(_apply, function), chunks) for item in chunk]
    except BrokenProcessPool as err:
        log.warning("%s: worker processes failed (%s); running in this process instead (a script that calls "
                    "bgetune keeps its work under `if __name__ == \"__main__\"`)", what, err)
        return None
