"""What every stage script does first: quiet, deterministic settings, logging, and params.yaml validated."""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")


def start(stage: str):
    logging.basicConfig(level=logging.INFO, format=f"[{stage}] %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "urllib3", "filelock", "dvclive", "faiss", "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from bgetune.params import ParamsError, load_params
    from bgetune.records import InputError

    try:
        return load_params(os.environ.get("BGETUNE_PARAMS", "params.yaml"))
    except (ParamsError, InputError) as err:
        sys.exit(f"[{stage}] {err}")


def run(stage: str, function, *args, **kwargs):
    """Call a pipeline function; bad input ends the stage with one clear line instead of a traceback."""
    from bgetune.records import InputError

    try:
        return function(*args, **kwargs)
    except InputError as err:
        sys.exit(f"[{stage}] {err}")
