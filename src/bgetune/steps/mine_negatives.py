"""mine-negatives: training pairs → data/train.jsonl (FlagEmbedding's format plus ids, strategies and teacher
scores); results/mining.json counts negatives per strategy, drops by reason and queries left without negatives;
results/plots/mining_scores.png shows how similar each strategy's negatives are to the query.

Candidates are scored by the vocabulary-expanded base (models/base) or ``mining.model``, on the GPU when there is
one (encoding in bf16/fp16, faiss on the GPU with faiss-gpu).

Reads params: seed, mining (mining.seed, when set, draws instead of seed), model.device, model.precision, model.base,
model.query_instruction, model.eval_instruction, model.pooling, model.trust_remote_code, model.query_max_length,
model.passage_max_length.

Example::

    report = run(load_params(), root=".")
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import read_pairs, read_passages, write_json, write_jsonl

log = logging.getLogger("bgetune")
OUTS = ["data/train.jsonl", "results/mining.json", "results/plots/mining_scores.png"]


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.lineage import check_pairs_in_corpus
    from bgetune.negatives.mine import mine
    from bgetune.plots import score_histograms

    root = Path(root)
    started = time.perf_counter()
    device = resolve_device(params.model.device)
    precision = resolve_precision(params.model.precision, device)
    passages = read_passages(root / "data/corpus.jsonl")
    pairs = read_pairs(root / "data/pairs/train.jsonl")
    check_pairs_in_corpus(pairs, passages, root / "data/pairs/train.jsonl", root / "data/corpus.jsonl")
    model, instruction, scorer = scoring_model(params, root, device)
    examples, report = mine(passages, pairs, model, params.mining, params.seed_of("mining"), instruction, progress,
                            device, precision)
    if params.mining.teacher:
        from bgetune.negatives.teacher import teacher_scores

        report["teacher"] = teacher_scores(examples, passages, params.mining, params.model, device, precision,
                                           scorer_model=model, scorer_instruction=instruction, progress=progress)
    report.update({"scoring_model": scorer, "query_instruction": instruction, "runtime": runtime(device, precision),
                   "seconds": round(time.perf_counter() - started, 2)})
    groups = {"positive": [s for e in examples for s in (e.pos_scores or [])]}
    for example in examples:
        for strategy, score in zip(example.neg_strategies, example.neg_scores or []):
            groups.setdefault(strategy, []).append(score)
    with StageOutputs("mine-negatives", OUTS, root) as out:
        write_jsonl(out.path("data/train.jsonl"), examples)
        write_json(out.path("results/mining.json"), report)
        score_histograms(groups, out.path("results/plots/mining_scores.png"),
                         "Similarity to the query: positives vs negatives per strategy")
    log.info("mine-negatives: %d queries; negatives per strategy %s; drops %s; %d queries without negatives",
             len(examples), report["negatives_per_strategy"], report["drops"], report["queries_without_negatives"])
    return report


def scoring_model(params, root: Path, device: str):
    """The model that ranks candidates: ``mining.model`` when set, else the expanded base; and its instruction."""
    from bgetune.models import instructions, load_model, query_instruction_for

    lengths = (params.model.query_max_length, params.model.passage_max_length)
    if params.mining.model:
        model = load_model(params.mining.model, device, *lengths, params.model.pooling, params.model.trust_remote_code,
                           key="mining.model")
        instruction = query_instruction_for(params.mining.model, params.model.query_instruction)
        return model, instruction, params.mining.model
    model = load_model(str(root / "models/base"), device, *lengths, key="models/base")
    _, instruction = instructions(params.model, params.model.base)
    return model, instruction, "models/base (the expanded base)"
