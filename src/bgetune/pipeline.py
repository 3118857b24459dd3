"""One function per pipeline stage: read inputs, call the package, write outputs atomically, return a summary.

The scripts in ``stages/`` only load params.yaml and call these with the paths dvc.yaml declares, so the same code
runs from DVC, from a test (with temporary paths) or from a notebook.

Example::

    from bgetune.params import load_params
    from bgetune import pipeline
    params = load_params()
    pipeline.run_split(params, out_dir="data", metrics_dir="metrics", models_dir="models")
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from bgetune.records import (InputError, read_json, read_pairs, read_passages, read_train_examples, write_json,
                             write_jsonl)

log = logging.getLogger("bgetune")


# ----------------------------------------------------------------------------------------------------------- split
def run_split(params, raw_dir: str | Path, data_dir: str | Path, metrics_dir: str | Path,
              models_dir: str | Path) -> dict:
    from bgetune.corpus import build_corpus
    from bgetune.ingest import load_documents
    from bgetune.models import query_instruction_for, resolve_model_path

    started = time.perf_counter()
    documents, ingest_report = load_documents(raw_dir, params.data)
    result = build_corpus(documents, params.chunk, params.split, params.seed)
    if not result.passages:
        raise InputError(f"{raw_dir}: documents were read but produced no passages")
    data_dir = Path(data_dir)
    write_jsonl(data_dir / "corpus.jsonl", result.passages)
    write_jsonl(data_dir / "existing_pairs.jsonl", result.pairs)
    write_json(data_dir / "splits.json", {"seed": params.seed, "documents": result.assignment})
    write_json(Path(models_dir) / "base.json", {
        "reference": params.model.base,
        "path": resolve_model_path(params.model.base),
        "query_instruction": query_instruction_for(params.model.base, params.model.query_instruction),
        "max_seq_length": params.model.max_seq_length,
        "pooling": params.model.pooling,
    })
    summary = {"ingest": ingest_report, "corpus": result.report, "seconds": round(time.perf_counter() - started, 2)}
    write_json(Path(metrics_dir) / "data.json", summary)
    log.info("split: %d documents → %d passages; %s", ingest_report["documents"], len(result.passages),
             result.report["passages_per_split"])
    return summary


# ---------------------------------------------------------------------------------------------------------- qa-gen
def run_qa_gen(params, data_dir: str | Path, metrics_dir: str | Path) -> dict:
    from bgetune.querygen import SOURCES

    data_dir = Path(data_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    existing = read_pairs(data_dir / "existing_pairs.jsonl")
    by_source, reports = {}, {}
    for source in params.qa_gen.sources:
        by_source[source], reports[source] = SOURCES[source](passages, existing, params.qa_gen, params.seed)
    # The same query text twice in one split is merged (positives united), counted, never silently dropped.
    merged: dict[tuple[str, str], object] = {}
    duplicates = 0
    for source in params.qa_gen.sources:
        for pair in by_source[source]:
            key = (pair.split, pair.query.strip())
            if key in merged:
                duplicates += 1
                kept = merged[key]
                kept.pos_ids = kept.pos_ids + [p for p in pair.pos_ids if p not in kept.pos_ids]
            else:
                merged[key] = pair
    pairs = list(merged.values())
    counts = {}
    for split in ("train", "val", "test"):
        split_pairs = [p for p in pairs if p.split == split]
        write_jsonl(data_dir / "pairs" / f"{split}.jsonl", split_pairs)
        counts[split] = dict(Counter(p.source for p in split_pairs))
    if not any(counts["train"].values()):
        raise InputError("qa-gen produced no training pairs: add questions to the raw data or enable "
                         "qa_gen.sources: [heuristic]")
    summary = {"pairs_per_split_and_source": counts, "sources": reports, "duplicate_queries_merged": duplicates}
    write_json(Path(metrics_dir) / "qa_gen.json", summary)
    log.info("qa-gen: %s", counts)
    return summary


# ------------------------------------------------------------------------------------------------- base + vocabulary
def load_expanded_base(params, base_card: dict, passage_texts: list[str]):
    """The base model with the corpus's missing characters added (when vocab.expand_chars), and what changed.

    Deterministic: the same base, corpus and params give the same tokens and the same new embedding rows, which is
    how mining, training and merging all start from one and the same expanded base.
    """
    from bgetune.models import load_model
    from bgetune.vocab import expand_vocabulary, missing_characters, tokens_per_text, unk_rate

    model = load_model(base_card["path"], params.model.max_seq_length, params.model.pooling,
                       params.model.trust_remote_code)
    report = {"expand_chars": params.vocab.expand_chars}
    if not params.vocab.expand_chars:
        return model, report
    sample = passage_texts[:2000]
    report["unk_rate_before"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_before"] = round(tokens_per_text(model.tokenizer, sample), 2)
    new_chars = missing_characters(model.tokenizer, passage_texts, params.vocab.min_char_count)
    report.update(expand_vocabulary(model, new_chars, params.vocab.init_noise, params.seed))
    report["unk_rate_after"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_after"] = round(tokens_per_text(model.tokenizer, sample), 2)
    report["sample_added"] = "".join(new_chars[:40])
    log.info("vocabulary: +%d characters; [UNK] rate %.3f → %.3f", report["tokens_added"],
             report["unk_rate_before"], report["unk_rate_after"])
    return model, report


# ------------------------------------------------------------------------------------------------- mine-negatives
def run_mine(params, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path) -> dict:
    from bgetune.negatives.mine import mine
    from bgetune.plots import score_histograms

    data_dir = Path(data_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    pairs = read_pairs(data_dir / "pairs" / "train.jsonl")
    base_card = read_json(Path(models_dir) / "base.json")
    model, vocab_report = load_expanded_base(params, base_card, [p.text for p in passages])
    examples, report = mine(passages, pairs, model, params.mining, params.seed, base_card["query_instruction"])
    write_jsonl(data_dir / "train.jsonl", examples)
    report["vocab"] = vocab_report
    groups = {"positive": [s for e in examples for s in (e.pos_scores or [])]}
    for example in examples:
        for strategy, score in zip(example.neg_strategies, example.neg_scores or []):
            groups.setdefault(strategy, []).append(score)
    score_histograms(groups, Path(metrics_dir) / "plots" / "mining_scores.png",
                     "Base-model similarity: positives vs negatives per strategy")
    write_json(Path(metrics_dir) / "mining.json", report)
    log.info("mine-negatives: %d queries; negatives per strategy %s; drops %s", len(examples),
             report["negatives_per_strategy"], report["drops"])
    return report


# ---------------------------------------------------------------------------------------------------------- train
def run_train(params, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path,
              checkpoint_dir: str | Path | None = None, progress: bool = True, on_step=None) -> dict:
    import torch

    from bgetune.training.loop import clear_checkpoint, train

    data_dir, models_dir, metrics_dir = Path(data_dir), Path(models_dir), Path(metrics_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    examples = read_train_examples(data_dir / "train.jsonl")
    base_card = read_json(models_dir / "base.json")
    torch.manual_seed(params.seed)
    model, vocab_report = load_expanded_base(params, base_card, [p.text for p in passages])
    instruction = base_card["query_instruction"]
    fingerprint = _fingerprint(params, [data_dir / "train.jsonl", data_dir / "corpus.jsonl"], base_card)

    live = _dvclive(metrics_dir / "train_log", resume=checkpoint_dir is not None and
                    (Path(checkpoint_dir) / "state.json").exists())

    def log_metrics(step: int, values: dict) -> None:
        if live is not None:
            live.step = step
            for key, value in values.items():
                live.log_metric(f"train/{key}", value)
            live.next_step()

    result = train(model, examples, params.train, params.seed, instruction, checkpoint_dir,
                   params.train.checkpoint_every, fingerprint, log_metrics, on_step, progress)
    if live is not None:
        live.end()
    _save_model(model, models_dir / "finetuned", instruction)
    if checkpoint_dir is not None:
        clear_checkpoint(checkpoint_dir)
    summary = {"train": result, "vocab": vocab_report, "query_instruction": instruction,
               "temperature": params.train.temperature}
    write_json(metrics_dir / "train.json", summary)
    log.info("train: %d steps in %.1f s, loss %s → %s", result["steps"], result["seconds"], result["first_loss"],
             result["final_loss_mean"])
    return summary


# ---------------------------------------------------------------------------------------------------------- merge
def run_merge(params, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path) -> dict:
    from bgetune.merging import merge_models
    from bgetune.models import load_model

    models_dir = Path(models_dir)
    passages = read_passages(Path(data_dir) / "corpus.jsonl")
    base_card = read_json(models_dir / "base.json")
    # Rebuild the expanded base training started from, so both models have the same vocabulary and shapes.
    base, _ = load_expanded_base(params, base_card, [p.text for p in passages])
    finetuned = load_model(str(models_dir / "finetuned"), params.model.max_seq_length)
    weights = list(params.merge.weights)
    merged = merge_models(base, [finetuned], weights)
    _save_model(merged, models_dir / "merged", base_card["query_instruction"])
    summary = {"weights": {"base": weights[0], "finetuned": weights[1]}}
    write_json(Path(metrics_dir) / "merge.json", summary)
    log.info("merge: weights base=%.2f finetuned=%.2f", weights[0], weights[1])
    return summary


# ------------------------------------------------------------------------------------------------------- evaluate
def run_evaluate(params, name: str, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path,
                 progress: bool = True) -> dict:
    """Evaluate one model (``base``, ``finetuned``, ``merged``) or the ``bm25`` baseline on the test split."""
    from bgetune.evaluation.metrics import first_relevant_rank, ranking_metrics
    from bgetune.evaluation.retrieval import bm25_rankings, dense_rankings

    data_dir, models_dir = Path(data_dir), Path(models_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    pairs = read_pairs(data_dir / "pairs" / "test.jsonl")
    if not pairs:
        raise InputError(f"{data_dir / 'pairs' / 'test.jsonl'}: no test pairs to evaluate (check split ratios)")
    texts, ids = [p.text for p in passages], [p.id for p in passages]
    queries = [p.query for p in pairs]
    k = max(max(params.eval.k_values), 10)
    started = time.perf_counter()
    if name == "bm25":
        rankings = bm25_rankings(texts, ids, queries, k)
        instruction = None
    else:
        model, instruction = _load_for_evaluation(params, name, models_dir)
        rankings, _, _ = dense_rankings(model, texts, ids, queries, k, instruction, params.eval.encode_batch_size,
                                        progress)
    relevant = [set(p.pos_ids) for p in pairs]
    metrics = ranking_metrics(rankings, relevant, params.eval.k_values)
    metrics.update({"queries": len(pairs), "passages": len(passages),
                    "seconds": round(time.perf_counter() - started, 2)})
    by_id = {p.id: p.text for p in passages}
    per_query = [{"qid": p.qid, "query": p.query, "rank": first_relevant_rank(r, rel), "pos_ids": p.pos_ids,
                  "top3": [{"id": pid, "text": by_id[pid][:200]} for pid in r[:3]]}
                 for p, r, rel in zip(pairs, rankings, relevant)]
    metrics_dir = Path(metrics_dir)
    write_jsonl(metrics_dir / "per_query" / f"{name}.jsonl", per_query)
    write_json(metrics_dir / f"{name}.json", metrics)
    log.info("evaluate %s: ndcg@10=%.4f recall@10=%.4f mrr@10=%.4f (instruction %r)", name, metrics["ndcg@10"],
             metrics.get("recall@10", float("nan")), metrics["mrr@10"], instruction)
    return metrics


def _load_for_evaluation(params, name: str, models_dir: Path):
    from bgetune.models import load_model

    if name == "base":
        card = read_json(models_dir / "base.json")
        model = load_model(card["path"], params.model.max_seq_length, params.model.pooling,
                           params.model.trust_remote_code)
        return model, card["query_instruction"]
    folder = models_dir / name
    if not folder.is_dir():
        raise InputError(f"{folder}: model folder not found (run the stage that writes it)")
    model = load_model(str(folder), params.model.max_seq_length)
    return model, model.prompts.get("query", "")


# --------------------------------------------------------------------------------------------------------- helpers
def _save_model(model, folder: Path, instruction: str) -> None:
    """Save a sentence-transformers folder (safetensors) atomically, with the query instruction as prompt 'query'."""
    model.prompts = {"query": instruction, "document": ""} if instruction else {}
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), safe_serialization=True)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _fingerprint(params, files: list[Path], base_card: dict) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"train": params.train.model_dump(), "vocab": params.vocab.model_dump(),
                              "model": params.model.model_dump(), "seed": params.seed, "base": base_card},
                             sort_keys=True).encode())
    for path in files:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _dvclive(directory: Path, resume: bool):
    try:
        from dvclive import Live

        return Live(dir=str(directory), save_dvc_exp=False, dvcyaml=None, resume=resume, report=None)
    except Exception as err:  # curves are a convenience: never lose a training run to them
        log.warning("training curves disabled (dvclive: %s)", err)
        return None
