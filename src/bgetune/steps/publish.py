"""publish: models/publish/{finetuned,merged} — each model folder ready to push to a hub: its weights (hard links
to models/<name>, no second copy on disk where the filesystem allows) and a model card that adds the test-split
results against the base model and BM25 to what the train and merge stages wrote.

Reads params: seed, model.*, train.*, vocab.*.

Example::

    run(load_params(), root=".")
    # huggingface-cli upload my-org/my-embedder models/publish/finetuned
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import read_json, read_passages

log = logging.getLogger("bgetune")
OUTS = ["models/publish/finetuned", "models/publish/merged"]
TERM_WEIGHTS = "results/eval/bm25_term_weights.json"    # written by the evaluate-bm25 stage


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    from bgetune.device import resolve_device
    from bgetune.modelcard import card_facts, finetuned_card
    from bgetune.models import instructions, load_model

    root = Path(root)
    test = {name: read_json(root / "metrics" / f"{name}.json") for name in ("base", "finetuned", "merged", "bm25")
            if (root / "metrics" / f"{name}.json").exists()}
    labels = {"base": f"base (`{params.model.base}`, as shipped)", "finetuned": "fine-tuned", "merged": "merged",
              "bm25": "BM25"}
    test = {labels[k]: v for k, v in test.items()}
    passages = read_passages(root / "data/corpus.jsonl")
    train = read_json(root / "results/train.json")
    merge = read_json(root / "results/merge.json")
    corpus_report = (read_json(root / "results/data.json") or {}).get("corpus", {})
    _, instruction = instructions(params.model, params.model.base)
    device = resolve_device("cpu")
    written = {}
    with StageOutputs("publish", OUTS, root) as out:
        for name in ("finetuned", "merged"):
            source, target = root / "models" / name, out.path(f"models/publish/{name}")
            link_tree(source, target)
            model = load_model(str(source), device, params.model.query_max_length, params.model.passage_max_length,
                               key=f"models/{name}")
            facts = card_facts(params, model, passages, [None] * _train_queries(root), 0, instruction, "", "")
            facts.update(_card_runtime(train))
            facts["path"] = f"models/publish/{name}"
            facts["tokens_added"] = (read_json(root / "results/vocab.json") or {}).get("tokens_added", 0)
            facts["titled_passages"] = corpus_report.get("title_prefixed", 0)
            facts["hybrid"] = hybrid_facts(root, name)
            if learned_term_weights(facts["hybrid"]):
                # The hybrid's BM25 weighed the question terms: its table travels with the model that needs it.
                shutil.copyfile(root / TERM_WEIGHTS, target / "bm25_term_weights.json")
            evaluation = root / "results" / "eval" / f"{name}.json"
            facts["windows"] = (read_json(evaluation) or {}).get("windows") if evaluation.exists() else None
            if name == "merged":
                facts.update({"title": "Merged embedding model",
                              "description": "Weighted average of " + ", ".join(
                                  f"{n} ({w:.2f})" for n, w in merge.get("weights", {}).items()) + " (LM-Cocktail)."})
            card = finetuned_card(params, train if name == "finetuned" else {}, facts, test)
            readme = target / "README.md"
            readme.unlink(missing_ok=True)
            readme.write_text(card, encoding="utf-8")
            written[name] = str(target)
    log.info("publish: %s", ", ".join(f"models/publish/{n}" for n in written))
    return written


def hybrid_facts(root: Path, name: str) -> dict | None:
    """The BM25 fusion the evaluate stage chose for ``name`` (method, weights, and with eval.term_weights.tune val's
    choice of BM25) and what it scored, or None."""
    evaluation = root / "results" / "eval" / f"{name}.json"
    hybrid = (read_json(evaluation) or {}).get("hybrid") if evaluation.exists() else None
    if not hybrid:
        return None
    metrics = read_json(root / "metrics" / f"{name}.json") or {}
    bm25 = root / "metrics" / "bm25.json"
    return {"method": hybrid.get("method", "rrf"), "weights": hybrid["weights"], "rrf_k": hybrid.get("rrf_k", 60),
            "bm25": hybrid.get("bm25"), "bm25_choice": (hybrid.get("tuning") or {}).get("bm25"),
            "ndcg@10": metrics.get("hybrid_ndcg@10"),
            "bm25_ndcg@10": (read_json(bm25) or {}).get("ndcg@10") if bm25.exists() else None}


def learned_term_weights(hybrid: dict | None) -> bool:
    """Whether the hybrid ranked with BM25 query-term weights learned from the train pairs (eval.term_weights)."""
    learned = ((hybrid or {}).get("bm25") or {}).get("term_weights") or {}
    return learned.get("method", "off") != "off"


def link_tree(source: Path, target: Path) -> None:
    """Copy a folder as hard links (a copy where links are not possible); README.md is left to the caller."""
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        if relative.name == "README.md" and len(relative.parts) == 1:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)


def _train_queries(root: Path) -> int:
    path = root / "data/train.jsonl"
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.exists() else 0


def _card_runtime(train: dict) -> dict:
    runtime = (train or {}).get("runtime") or {}
    return {"device": runtime.get("gpu") or runtime.get("device", ""), "precision": runtime.get("precision", "")}

