"""rerank: a cross-encoder trained on the run's own data/train.jsonl groups → models/reranker and
results/rerank.json (groups used and left out, steps, losses, device, precision, seconds).

It starts from ``rerank.init``: ``finetuned`` (models/finetuned's transformer, whose new Chinese rows are trained,
under a new one-logit head) or a cross-encoder's hub id or folder (training: bgetune.training.reranker).
evaluate@finetuned and @merged then reorder their hybrid's top ``rerank.top_k`` with it (bgetune.reranking). With
``rerank.enabled: false`` (the default) the stage trains nothing: models/reranker holds only a README saying so and
results/rerank.json ``{"enabled": false}``, so the graph is the same either way and switching it on re-runs exactly
this stage and the two evaluations.

Checkpoints go to models/checkpoints/rerank/ every ``rerank.checkpoint_every`` steps; a killed run resumes from the
last whole one when params and inputs are unchanged.

Reads params: seed, rerank, model.device, model.trust_remote_code.

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import write_json

log = logging.getLogger("bgetune")
OUTS = ["models/reranker", "results/rerank.json"]
CHECKPOINTS = "models/checkpoints/rerank"
OFF_NOTE = "No reranker here: rerank.enabled is false in params.yaml (set it to true and run `dvc repro`).\n"


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.records import read_train_examples
    from bgetune.training.reranker import init_folder, train_reranker, training_groups

    root = Path(root)
    settings = params.rerank
    if not settings.enabled:
        with StageOutputs("rerank", OUTS, root) as out:
            folder = out.path("models/reranker")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "README.md").write_text(OFF_NOTE, encoding="utf-8")
            write_json(out.path("results/rerank.json"), {"enabled": False})
        log.info("rerank: off (rerank.enabled: false); no reranker trained")
        return {"enabled": False}
    started = time.perf_counter()
    device = resolve_device(params.model.device)
    precision = resolve_precision(settings.precision, device)
    seed = params.seed_of("rerank")
    examples = read_train_examples(root / "data/train.jsonl")
    groups, left_out = training_groups(examples, settings.hard_negatives, seed)
    log.info("rerank: %d training groups (the positive, %d hard and %d in-batch negatives each); %d of %d questions "
             "left out with fewer than %d mined negatives; on %s in %s", len(groups), settings.hard_negatives,
             settings.random_negatives, left_out, len(examples), settings.hard_negatives, device, precision)
    checkpoints = root / CHECKPOINTS
    init = settings.init
    if init == "finetuned":
        init = init_folder(root / "models/finetuned", checkpoints / "init")
    with StageOutputs("rerank", OUTS, root) as out:
        training = train_reranker(init, out.path("models/reranker"), groups, settings, seed, device, precision,
                                  checkpoint_dir=checkpoints / "trainer", fingerprint=fingerprint_of(params, root),
                                  trust_remote_code=params.model.trust_remote_code, progress=progress)
        summary = {"enabled": True, "init": settings.init, "groups": len(groups), "left_out": left_out,
                   "questions": len(examples), **training, "runtime": runtime(device, precision),
                   "seconds": round(time.perf_counter() - started, 2)}
        write_json(out.path("results/rerank.json"), summary)
    shutil.rmtree(checkpoints, ignore_errors=True)
    log.info("rerank: %d steps in %.0f s, loss %s → %s", training["steps"], training["seconds"],
             training["first_loss"], training["final_loss"])
    return summary


def fingerprint_of(params, root: Path) -> str:
    """The params and input files a reranker checkpoint depends on: one made from others is never resumed."""
    from bgetune.training.checkpoints import digest_files

    digest = hashlib.sha256(json.dumps({"seed": params.seed_of("rerank"), "rerank": params.rerank.model_dump(),
                                        "trust_remote_code": params.model.trust_remote_code},
                                       sort_keys=True).encode())
    files = [root / "data/train.jsonl"]
    if params.rerank.init == "finetuned":
        files += sorted((root / "models/finetuned").rglob("*"))
    digest_files(digest, root, files)
    return digest.hexdigest()
