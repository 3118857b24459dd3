"""What every stage script does first: quiet, deterministic settings, logging, leftovers of a killed run repaired,
params.yaml validated — and bad input ends the stage with one line naming the file, line or param, no traceback."""
from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
NOISY = ("httpx", "sentence_transformers", "transformers", "urllib3", "filelock", "dvclive", "faiss", "faiss.loader",
         "datasets", "accelerate", "jieba", "huggingface_hub", "bm25s")


def start(stage: str):
    rank = os.environ.get("RANK")
    prefix = f"[{stage}{'' if rank in (None, '0') else f' rank {rank}'}]"
    logging.basicConfig(level=logging.INFO, format=f"{prefix} %(message)s", stream=sys.stderr, force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:   # weight-loading bars say nothing a stage's own log lines do not
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:
        pass
    from bgetune.errors import BgetuneError
    from bgetune.outputs import recover, remove_stale_temp_files
    from bgetune.params import load_params

    try:
        params = load_params(os.environ.get("BGETUNE_PARAMS", "params.yaml"))
    except BgetuneError as err:
        sys.exit(f"{prefix} {err}")
    from bgetune.preflight import check_all

    try:
        check_all(params, ".")   # every check that can run before work starts: files, models, keys, devices
    except BgetuneError as err:
        sys.exit(f"{prefix} {err}")
    if rank in (None, "0"):
        recover(".")
        removed = remove_stale_temp_files(params.qa_gen.llm.cache_dir)
        if removed:
            logging.getLogger("bgetune").warning("removed %d temp files a killed run left in %s", removed,
                                                 params.qa_gen.llm.cache_dir)
    return params


def run(stage: str, function, *args, **kwargs):
    """Call a stage function; a problem the user can fix ends the stage with one clear line, not a traceback."""
    from bgetune.errors import BgetuneError

    rank = os.environ.get("RANK")
    prefix = f"[{stage}{'' if rank in (None, '0') else f' rank {rank}'}]"
    try:
        return function(*args, **kwargs)
    except BgetuneError as err:
        sys.exit(f"{prefix} {err}")
    except KeyboardInterrupt:
        sys.exit(f"{prefix} interrupted; run it again to resume")
    except OSError as err:
        import errno

        if err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            # The stage's outputs were being written to a staging folder: nothing half-written is left in place.
            sys.exit(f"{prefix} no space left while writing {err.filename or 'an output'} ({err.strerror}); free "
                     "disk space and run the stage again")
        raise
