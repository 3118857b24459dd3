"""split: raw documents → passages (data/corpus.jsonl), their split (data/splits.json) and the questions that came
with them (data/existing_pairs.jsonl); results/data.json says what was read, skipped, merged and how long
passages and queries are against the model's limits.

Reads params: seed, data, chunk, split, model.base, model.query_instruction, model.train_instruction,
model.query_max_length, model.passage_max_length, model.trust_remote_code. (Like every stage it first checks what can be
checked before work starts — files, models, keys: ``bgetune.preflight`` — which changes no output.)

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import InputError, project_path, write_json, write_jsonl

log = logging.getLogger("bgetune")
OUTS = ["data/corpus.jsonl", "data/existing_pairs.jsonl", "data/splits.json", "results/data.json"]
WARN_SHARE = 0.01


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    from bgetune.chunking import length_report, token_measure
    from bgetune.corpus import build_corpus
    from bgetune.ingest import load_documents
    from bgetune.models import instructions, load_config, load_tokenizer, token_limit

    root = Path(root)
    started = time.perf_counter()
    raw = project_path(root, params.data.raw_dir)
    documents, ingest_report = load_documents(raw, params.data)
    tokenizer = load_tokenizer(params.model.base, params.model.trust_remote_code)
    config = load_config(params.model.base, params.model.trust_remote_code)
    passage_limit = token_limit(tokenizer, params.model.passage_max_length, config)
    query_limit = token_limit(tokenizer, params.model.query_max_length, config)
    chunk = params.chunk
    measure = None
    if chunk.unit == "tokens":
        measure = token_measure(tokenizer)
        if not chunk.max_tokens:
            chunk = chunk.model_copy(update={"max_tokens": passage_limit})
    result = build_corpus(documents, chunk, params.split, params.seed, measure, progress=progress)
    if not result.passages:
        raise InputError(f"{raw}: documents were read but produced no passages")
    check_split_sizes(result, params.split, raw)
    train_instruction, _ = instructions(params.model, params.model.base)
    lengths = length_report(tokenizer, [p.text for p in result.passages], [p.query for p in result.pairs],
                            passage_limit, query_limit, train_instruction)
    for name, key in (("passages", "model.passage_max_length"), ("queries", "model.query_max_length")):
        share = lengths[name]["over_limit_share"]
        if share > WARN_SHARE:
            log.warning("split: %.1f%% of %s are longer than %d tokens and will be cut when encoded: raise %s or "
                        "shorten chunks (chunk.max_chars / chunk.unit: tokens)", 100 * share, name,
                        lengths[name]["token_limit"], key)
    summary = {"ingest": ingest_report, "corpus": result.report, "lengths": lengths,
               "seconds": round(time.perf_counter() - started, 2)}
    with StageOutputs("split", OUTS, root) as out:
        write_jsonl(out.path("data/corpus.jsonl"), result.passages)
        write_jsonl(out.path("data/existing_pairs.jsonl"), result.pairs)
        write_json(out.path("data/splits.json"), {"seed": params.seed, "documents": result.assignment})
        write_json(out.path("results/data.json"), summary)
    log.info("split: %d documents → %d passages %s; %d questions; passages over %d tokens: %d", 
             ingest_report["documents"], len(result.passages), result.report["passages_per_split"],
             len(result.pairs), passage_limit, lengths["passages"]["over_limit"])
    if params.chunk.title_prefix:
        log.info("split: chunk.title_prefix: %d passages start with their title; %d have none or start with it "
                 "already", result.report["title_prefixed"], result.report["title_prefix_not_needed"])
    return summary


def check_split_sizes(result, split_params, raw) -> None:
    """Every split with a positive ratio must get documents, before anything is trained."""
    per_split = result.report["documents_per_split"]
    missing = [s for s in ("train", "val", "test") if getattr(split_params, s) > 0 and not per_split.get(s)]
    if missing:
        documents = sum(per_split.values())
        raise InputError(f"{raw}: {documents} document group(s) cannot fill the {', '.join(missing)} split(s) "
                         f"(split ratios {split_params.train}/{split_params.val}/{split_params.test}); add "
                         "documents or set the missing split's ratio to 0 where allowed (split.val)")
