"""qa-gen: passages + the questions that came with them → query/positive pairs per split (data/pairs/*.jsonl),
from the sources in ``qa_gen.sources`` (existing questions, heuristic titles and key sentences, an LLM).

Reads params: seed, qa_gen, model.device. The same query twice in one split is merged (positives united) and
counted; a split the pipeline needs that ends up without pairs stops the stage here, not after training.

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import InputError, read_pairs, read_passages, write_json, write_jsonl

log = logging.getLogger("bgetune")
OUTS = ["data/pairs", "results/qa_gen.json"]


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    from bgetune.lineage import check_pairs_in_corpus
    from bgetune.querygen import SOURCES

    root = Path(root)
    passages = read_passages(root / "data/corpus.jsonl")
    existing = read_pairs(root / "data/existing_pairs.jsonl")
    check_pairs_in_corpus(existing, passages, root / "data/existing_pairs.jsonl", root / "data/corpus.jsonl")
    by_source, reports = {}, {}
    for source in params.qa_gen.sources:
        by_source[source], reports[source] = SOURCES[source](passages, existing, params.qa_gen, params.seed,
                                                             device=params.model.device, progress=progress,
                                                             lexical=params.lexical)
    pairs, duplicates = merge_duplicate_queries([p for source in params.qa_gen.sources for p in by_source[source]])
    counts = {split: dict(Counter(p.source for p in pairs if p.split == split)) for split in ("train", "val", "test")}
    empty = [split for split in ("train", "test") if not counts[split]]
    if empty:
        raise InputError(f"qa-gen produced no {' and no '.join(empty)} pairs (sources {params.qa_gen.sources}): "
                         "the raw data needs questions for the test split, or generate them there "
                         "(qa_gen.heuristic.splits / qa_gen.llm.splits)")
    summary = {"pairs_per_split_and_source": counts, "sources": reports, "duplicate_queries_merged": duplicates}
    with StageOutputs("qa-gen", OUTS, root) as out:
        for split in ("train", "val", "test"):
            write_jsonl(out.path("data/pairs") / f"{split}.jsonl", [p for p in pairs if p.split == split])
        write_json(out.path("results/qa_gen.json"), summary)
    log.info("qa-gen: %s; %d duplicate queries merged", counts, duplicates)
    return summary


def merge_duplicate_queries(pairs):
    """The same query text twice in one split becomes one pair with the positives of both (counted)."""
    merged: dict[tuple[str, str], object] = {}
    duplicates = 0
    for pair in pairs:
        key = (pair.split, pair.query.strip())
        if key in merged:
            duplicates += 1
            kept = merged[key]
            kept.pos_ids = kept.pos_ids + [p for p in pair.pos_ids if p not in kept.pos_ids]
            kept.neg_ids = [n for n in dict.fromkeys(kept.neg_ids + pair.neg_ids) if n not in kept.pos_ids]
        else:
            merged[key] = pair
    return list(merged.values()), duplicates
