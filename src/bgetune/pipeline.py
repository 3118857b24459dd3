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
    measure = None
    if params.chunk.unit == "tokens":
        from transformers import AutoTokenizer

        from bgetune.chunking import token_measure

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(params.model.base),
                                                  trust_remote_code=params.model.trust_remote_code)
        measure = token_measure(tokenizer)
    result = build_corpus(documents, params.chunk, params.split, params.seed, measure, progress=True)
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
                kept.neg_ids = [n for n in dict.fromkeys(kept.neg_ids + pair.neg_ids) if n not in kept.pos_ids]
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
    vocab = params.vocab
    report = {"expand_chars": vocab.expand_chars, "expand_terms": vocab.expand_terms}
    if not vocab.expand_chars and not vocab.expand_terms:
        return model, report
    sample = passage_texts[:2000]
    report["unk_rate_before"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_before"] = round(tokens_per_text(model.tokenizer, sample), 2)
    if vocab.expand_chars:
        new_chars = missing_characters(model.tokenizer, passage_texts, vocab.min_char_count)
        added = expand_vocabulary(model, new_chars, vocab.init_noise, params.seed)
        report.update({"characters_added": added["tokens_added"], "vocab_size_before": added["vocab_size_before"],
                       "sample_characters": "".join(new_chars[:40])})
    if vocab.expand_terms:
        from bgetune.vocab import domain_terms, read_terms

        user_terms = read_terms(vocab.term_file) if vocab.term_file else []
        terms = domain_terms(model.tokenizer, passage_texts, vocab.top_terms, vocab.min_term_count, user_terms)
        # Terms go in after the characters, so a term's first row is the mean of its (new) character rows.
        added = expand_vocabulary(model, terms, vocab.init_noise, params.seed + 1)
        report.update({"terms_added": added["tokens_added"], "user_terms": len(user_terms),
                       "sample_terms": terms[:20]})
        report.setdefault("vocab_size_before", added["vocab_size_before"])
    report["vocab_size_after"] = len(model.tokenizer)
    report["tokens_added"] = report["vocab_size_after"] - report["vocab_size_before"]
    report["unk_rate_after"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_after"] = round(tokens_per_text(model.tokenizer, sample), 2)
    log.info("vocabulary: +%d tokens (%s characters, %s terms); [UNK] rate %.3f → %.3f; tokens per passage "
             "%.1f → %.1f", report["tokens_added"], report.get("characters_added", 0), report.get("terms_added", 0),
             report["unk_rate_before"], report["unk_rate_after"], report["tokens_per_passage_before"],
             report["tokens_per_passage_after"])
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
    instruction = base_card["query_instruction"]
    if params.mining.model:
        # Score candidates with another model (a Chinese BGE, or an earlier fine-tuned model) than the one trained:
        # a base that cannot yet read the domain ranks almost at random.
        from bgetune.models import load_model, query_instruction_for, resolve_model_path

        model = load_model(resolve_model_path(params.mining.model), params.model.max_seq_length,
                           params.model.pooling, params.model.trust_remote_code)
        instruction = model.prompts.get("query") or query_instruction_for(params.mining.model,
                                                                          params.model.query_instruction)
        log.info("mine-negatives: scoring with %s (instruction %r)", params.mining.model, instruction)
    examples, report = mine(passages, pairs, model, params.mining, params.seed, instruction)
    report["scoring_model"] = params.mining.model or "expanded base"
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
    """Fine-tune the expanded base (full or LoRA, any loss), optionally a second stage, and save a plain
    sentence-transformers folder to models/finetuned (the LoRA adapter is kept in models/finetuned/lora_adapter)."""
    import torch

    from bgetune.training.loop import clear_checkpoint, train

    data_dir, models_dir, metrics_dir = Path(data_dir), Path(models_dir), Path(metrics_dir)
    if params.train.backend == "flagembedding":
        from bgetune.training.flagembedding import run_flagembedding_train

        return run_flagembedding_train(params, data_dir, models_dir, metrics_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    examples = read_train_examples(data_dir / "train.jsonl")
    base_card = read_json(models_dir / "base.json")
    torch.manual_seed(params.seed)
    model, vocab_report = load_expanded_base(params, base_card, [p.text for p in passages])
    instruction = base_card["query_instruction"]
    stage2_files = _stage2_files(params)
    fingerprint = _fingerprint(params, [data_dir / "train.jsonl", data_dir / "corpus.jsonl", *stage2_files],
                               base_card)
    lora = None
    if params.train.method == "lora":
        from bgetune.training.lora import add_lora

        lora = add_lora(model, params.train.lora, vocab_report.get("vocab_size_before"))
    if params.train.freeze_embeddings:
        _freeze_embeddings(model)
    evaluate = _val_evaluator(params, data_dir, passages, instruction) if params.train.eval_every else None
    noise_texts = None
    if params.train.noise_weight > 0:
        from bgetune.evaluation.noise import load_noise_texts

        noise_texts = load_noise_texts(params.train.noise_texts)

    from bgetune.training.distributed import DistributedContext

    context = DistributedContext.from_environment()   # under torchrun: one process per device
    resume = checkpoint_dir is not None and (Path(checkpoint_dir) / "state.json").exists()
    live = _dvclive(metrics_dir / "train_log", resume=resume) if context.is_main else None

    def log_metrics(step: int, values: dict) -> None:
        if live is not None:
            live.step = step
            for key, value in values.items():
                live.log_metric(f"train/{key}", value)
            live.next_step()

    result = train(model, examples, params.train, params.seed, instruction, checkpoint_dir,
                   params.train.checkpoint_every, fingerprint, log_metrics, on_step, progress, evaluate, noise_texts)
    summary = {"train": result, "vocab": vocab_report, "query_instruction": instruction,
               "temperature": params.train.temperature, "method": params.train.method, "loss": params.train.loss}
    if stage2_files:
        stage2_examples = [e for path in stage2_files for e in read_train_examples(path)]
        stage2_params = params.train.model_copy(update={
            "epochs": params.train.stage2.epochs, "max_steps": params.train.stage2.max_steps,
            "lr": params.train.stage2.lr})
        if params.train.stage2.freeze_embeddings:
            _freeze_embeddings(model)
        second = Path(checkpoint_dir).with_name(Path(checkpoint_dir).name + "-stage2") if checkpoint_dir else None
        summary["stage2"] = train(model, stage2_examples, stage2_params, params.seed + 1, instruction, second,
                                  params.train.checkpoint_every, fingerprint + ":stage2", None, None, progress,
                                  evaluate, noise_texts)
        summary["stage2"]["files"] = [str(p) for p in stage2_files]
        if second is not None:
            clear_checkpoint(second)
        log.info("train stage 2: %d examples, %d steps, embeddings %s", len(stage2_examples),
                 summary["stage2"]["steps"], "frozen" if params.train.stage2.freeze_embeddings else "trained")
    if live is not None:
        live.end()
    if not context.is_main:
        return summary   # the main process saves the (identical) model and the summary
    if lora is not None:
        from bgetune.training.lora import merge_lora

        summary["lora"] = merge_lora(model, models_dir / ".lora_adapter.tmp")
    _save_model(model, models_dir / "finetuned", instruction)
    if lora is not None:
        os.replace(models_dir / ".lora_adapter.tmp", models_dir / "finetuned" / "lora_adapter")
    if checkpoint_dir is not None:
        clear_checkpoint(checkpoint_dir)
    write_json(metrics_dir / "train.json", summary)
    log.info("train: %d steps in %.1f s, loss %s → %s", result["steps"], result["seconds"], result["first_loss"],
             result["final_loss_mean"])
    return summary


def _stage2_files(params) -> list[Path]:
    if not params.train.stage2.enabled:
        return []
    folder = Path(params.train.stage2.folder)
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: train.stage2.enabled but no *.jsonl pair files (FlagEmbedding format: "
                         "query, pos, neg)")
    return files


def _freeze_embeddings(model) -> None:
    for parameter in model[0].auto_model.get_input_embeddings().parameters():
        parameter.requires_grad_(False)


def val_pool(data_dir: Path, passages, max_passages: int, seed: int, why: str):
    """The val pairs, and the passages to rank for them: their positives plus a seeded sample of the rest, so that
    evaluating while training or merging stays cheap on a large corpus."""
    import random

    val_pairs = [p for p in read_pairs(data_dir / "pairs" / "val.jsonl") if p.pos_ids]
    if not val_pairs:
        raise InputError(f"{data_dir / 'pairs' / 'val.jsonl'}: {why} needs val pairs (split.val > 0)")
    needed = {i for p in val_pairs for i in p.pos_ids}
    others = [p for p in passages if p.id not in needed]
    room = max(max_passages - len(needed), 0)
    return val_pairs, [p for p in passages if p.id in needed] + random.Random(seed).sample(others,
                                                                                          min(room, len(others)))


def _val_evaluator(params, data_dir: Path, passages, instruction: str):
    """NDCG@10 etc. of the val queries over their positives plus a seeded sample of the corpus."""
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings

    val_pairs, pool = val_pool(data_dir, passages, params.train.eval_max_passages, params.seed, "train.eval_every")
    texts, ids = [p.text for p in pool], [p.id for p in pool]
    queries, relevant = [p.query for p in val_pairs], [set(p.pos_ids) for p in val_pairs]

    def evaluate(model) -> dict:
        rankings, _, _ = dense_rankings(model, texts, ids, queries, 10, instruction, 32, progress=False)
        metrics = ranking_metrics(rankings, relevant, [1, 10])
        return {"ndcg@10": metrics["ndcg@10"], "recall@10": metrics["recall@10"], "mrr@10": metrics["mrr@10"]}

    return evaluate


# ---------------------------------------------------------------------------------------------------------- merge
def run_merge(params, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path,
              progress: bool = True) -> dict:
    """Merge base and fine-tuned weights (fixed, or searched on the val split) and report which layers moved."""
    from bgetune.merging import choose_merge_weight, layer_changes, merge_models, search_merge_weights
    from bgetune.models import load_model
    from bgetune.plots import bar_chart

    data_dir, models_dir, metrics_dir = Path(data_dir), Path(models_dir), Path(metrics_dir)
    passages = read_passages(data_dir / "corpus.jsonl")
    base_card = read_json(models_dir / "base.json")
    # Rebuild the expanded base training started from, so both models have the same vocabulary and shapes.
    base, _ = load_expanded_base(params, base_card, [p.text for p in passages])
    finetuned = load_model(str(models_dir / "finetuned"), params.model.max_seq_length)
    base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    tuned_state = finetuned.state_dict()
    changes = layer_changes(base_state, tuned_state)
    write_json(metrics_dir / "layer_changes.json", changes)
    bar_chart([c["layer"] for c in changes], [c["relative_change"] for c in changes],
              metrics_dir / "plots" / "layer_changes.png", "Relative weight change per layer, fine-tuned vs base",
              "‖Δθ‖ / ‖θ_base‖")
    summary: dict = {"layer_changes": {c["layer"]: c["relative_change"] for c in changes}}
    weights = list(params.merge.weights)
    if params.merge.search:
        from bgetune.evaluation.general import general_metrics, load_general_set
        from bgetune.evaluation.metrics import ranking_metrics
        from bgetune.evaluation.retrieval import dense_rankings

        val_pairs, pool = val_pool(data_dir, passages, params.merge.search_max_passages, params.seed,
                                   "merge.search")
        general = load_general_set(params.eval.general, params.chunk, params.seed)
        instruction = base_card["query_instruction"]
        k_values = [10]

        def evaluate(model) -> dict:
            rankings, _, _ = dense_rankings(model, [p.text for p in pool], [p.id for p in pool],
                                            [p.query for p in val_pairs], 10, instruction,
                                            params.eval.encode_batch_size, progress=False)
            result = {"val_ndcg@10": ranking_metrics(rankings, [set(p.pos_ids) for p in val_pairs],
                                                     k_values)["ndcg@10"]}
            if general is not None:
                result["ood_ndcg@10"] = general_metrics(model, instruction, general, k_values,
                                                        params.eval.encode_batch_size)["ood_ndcg@10"]
            log.info("merge search: %s", result)
            return result

        grid = sorted(set(params.merge.grid) | ({0.0} if general is not None else set()))
        trials = search_merge_weights(base, base_state, tuned_state, grid, evaluate)
        base_ood = next((t.get("ood_ndcg@10") for t in trials if t["finetuned_weight"] == 0.0), None)
        chosen, reason = choose_merge_weight(trials, base_ood if general is not None else None,
                                             params.merge.ood_tolerance)
        weights = [1.0 - chosen["finetuned_weight"], chosen["finetuned_weight"]]
        summary["search"] = {"trials": trials, "chosen_finetuned_weight": chosen["finetuned_weight"],
                             "reason": reason, "val_queries": len(val_pairs), "val_passages": len(pool),
                             "general_set": general.source if general is not None else None}
        base.load_state_dict(base_state)
        log.info("merge search: chose fine-tuned weight %.2f (%s)", weights[1], reason)
    merged = merge_models(base, [finetuned], weights)
    _save_model(merged, models_dir / "merged", base_card["query_instruction"])
    summary["weights"] = {"base": weights[0], "finetuned": weights[1]}
    write_json(metrics_dir / "merge.json", summary)
    log.info("merge: weights base=%.2f finetuned=%.2f; most changed layer %s", weights[0], weights[1],
             max(changes, key=lambda c: c["relative_change"])["layer"] if changes else None)
    return summary


# ------------------------------------------------------------------------------------------------------- evaluate
CURVE_KS = (1, 2, 3, 5, 10, 20, 50, 100)


def run_evaluate(params, name: str, data_dir: str | Path, models_dir: str | Path, metrics_dir: str | Path,
                 progress: bool = True) -> dict:
    """Evaluate one model (``base``, ``finetuned``, ``merged``) or the ``bm25`` baseline on the test split.

    Writes metrics/<name>.json (flat keys: retrieval, pair, noise, hybrid and out-of-domain metrics),
    metrics/per_query/<name>.jsonl, metrics/curves/<name>.json (Recall@k) and, for dense models,
    metrics/plots/similarity_<name>.png.
    """
    data_dir, models_dir, metrics_dir = Path(data_dir), Path(models_dir), Path(metrics_dir)
    test = _load_test_set(params, data_dir)
    started = time.perf_counter()
    if name == "bm25":
        from bgetune.evaluation.general import general_bm25_metrics, load_general_set
        from bgetune.evaluation.metrics import ranking_metrics

        rankings = test.bm25
        metrics = ranking_metrics(rankings, test.relevant, params.eval.k_values)
        general = load_general_set(params.eval.general, params.chunk, params.seed)
        if general is not None:
            metrics.update(general_bm25_metrics(general, params.eval.k_values))
        hybrid_rankings, pair_scores, instruction = None, None, None
    else:
        model, instruction = _load_for_evaluation(params, name, models_dir)
        metrics, rankings, hybrid_rankings, pair_scores = evaluate_dense_model(params, model, instruction, test,
                                                                               progress)
    metrics.update({"queries": len(test.pairs), "passages": len(test.ids), **test.leakage_counts,
                    "seconds": round(time.perf_counter() - started, 2)})
    _write_evaluation(name, metrics, rankings, hybrid_rankings, pair_scores, test, metrics_dir)
    log.info("evaluate %s: ndcg@10=%.4f recall@10=%.4f mrr@10=%.4f%s (instruction %r)", name, metrics["ndcg@10"],
             metrics.get("recall@10", float("nan")), metrics["mrr@10"],
             f" pair_auc={metrics['pair_auc']:.4f}" if "pair_auc" in metrics else "", instruction)
    return metrics


def run_evaluate_extra(params, data_dir: str | Path, metrics_dir: str | Path, progress: bool = True) -> dict:
    """Evaluate every model in ``eval.extra_models`` (name → folder or hub id) like the pipeline's own models."""
    from bgetune.models import load_model, query_instruction_for, resolve_model_path

    (Path(metrics_dir) / "extra").mkdir(parents=True, exist_ok=True)
    results = {}
    test = _load_test_set(params, Path(data_dir)) if params.eval.extra_models else None
    for name, reference in sorted(params.eval.extra_models.items()):
        model = load_model(resolve_model_path(reference), params.model.max_seq_length, params.model.pooling,
                           params.model.trust_remote_code)
        instruction = model.prompts.get("query") or query_instruction_for(reference, params.model.query_instruction)
        metrics, rankings, hybrid, pair_scores = evaluate_dense_model(params, model, instruction, test, progress)
        metrics.update({"queries": len(test.pairs), "passages": len(test.ids), "reference": reference})
        _write_evaluation(name, None, rankings, hybrid, pair_scores, test, Path(metrics_dir) / "extra")
        results[name] = metrics
        log.info("evaluate extra %s (%s): ndcg@10=%.4f", name, reference, metrics["ndcg@10"])
    write_json(Path(metrics_dir) / "extra.json", results)
    return results


class _TestSet:
    def __init__(self, passages, pairs, bm25, leakage_counts):
        self.passages, self.pairs, self.bm25, self.leakage_counts = passages, pairs, bm25, leakage_counts
        self.texts = [p.text for p in passages]
        self.ids = [p.id for p in passages]
        self.queries = [p.query for p in pairs]
        self.relevant = [set(p.pos_ids) for p in pairs]
        self.index_of = {pid: i for i, pid in enumerate(self.ids)}


def _load_test_set(params, data_dir: Path) -> _TestSet:
    from bgetune.evaluation.leakage import LeakageError, describe, find_leaks
    from bgetune.evaluation.retrieval import bm25_rankings

    passages = read_passages(data_dir / "corpus.jsonl")
    pairs = read_pairs(data_dir / "pairs" / "test.jsonl")
    if not pairs:
        raise InputError(f"{data_dir / 'pairs' / 'test.jsonl'}: no test pairs to evaluate (check split ratios)")
    train_path = data_dir / "pairs" / "train.jsonl"
    leaks = find_leaks(read_pairs(train_path) if train_path.exists() else [], pairs, passages)
    if leaks["leaked_queries"] or leaks["leaked_passages"]:
        if params.eval.leakage == "error":
            raise LeakageError(f"{data_dir / 'pairs'}: " + describe(leaks))
        log.warning(describe(leaks))
    texts, ids = [p.text for p in passages], [p.id for p in passages]
    k = max(max(params.eval.k_values), max(CURVE_KS))
    bm25 = bm25_rankings(texts, ids, [p.query for p in pairs], k)
    return _TestSet(passages, pairs, bm25, {"leaked_test_queries": leaks["leaked_queries"],
                                            "leaked_test_passages": leaks["leaked_passages"]})


def evaluate_dense_model(params, model, instruction: str, test: _TestSet, progress: bool = True):
    """Retrieval, pair, noise, hybrid (RRF with BM25) and general-set metrics of one dense model."""
    from bgetune.evaluation.general import general_metrics, load_general_set
    from bgetune.evaluation.hybrid import reciprocal_rank_fusion
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.noise import load_noise_texts, noise_similarity
    from bgetune.evaluation.pairs import pair_metrics
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.search import encode

    eval_params = params.eval
    k = max(max(eval_params.k_values), max(CURVE_KS))
    rankings, query_vectors, passage_vectors = dense_rankings(model, test.texts, test.ids, test.queries, k,
                                                              instruction, eval_params.encode_batch_size, progress)
    metrics = ranking_metrics(rankings, test.relevant, eval_params.k_values)
    positives = [[test.index_of[i] for i in p.pos_ids if i in test.index_of] for p in test.pairs]
    pairs_metrics, pair_scores = pair_metrics(query_vectors, passage_vectors, positives, eval_params.pair_negatives,
                                              params.seed)
    metrics.update(pairs_metrics)
    noise_vectors = encode(model, load_noise_texts(eval_params.noise_texts), eval_params.encode_batch_size,
                           progress=False)
    best_positive = [max(float(query_vectors[q] @ passage_vectors[i]) for i in pos) if pos else 0.0
                     for q, pos in enumerate(positives)]
    metrics.update(noise_similarity(query_vectors, noise_vectors, best_positive))
    hybrid_rankings = None
    if eval_params.hybrid.enabled:
        hybrid_rankings = [reciprocal_rank_fusion([dense, lexical], eval_params.hybrid.weights,
                                                  eval_params.hybrid.rrf_k, depth=k)
                           for dense, lexical in zip(rankings, test.bm25)]
        hybrid = ranking_metrics(hybrid_rankings, test.relevant, eval_params.k_values)
        metrics.update({f"hybrid_{key}": value for key, value in hybrid.items()})
    general = load_general_set(eval_params.general, params.chunk, params.seed)
    if general is not None:
        metrics.update(general_metrics(model, instruction, general, eval_params.k_values,
                                       eval_params.encode_batch_size))
    return metrics, rankings, hybrid_rankings, pair_scores


def _write_evaluation(name, metrics, rankings, hybrid_rankings, pair_scores, test: _TestSet, metrics_dir: Path):
    from bgetune.evaluation.metrics import first_relevant_rank, query_ndcg, recall_curve
    from bgetune.plots import score_histograms

    by_id = {p.id: p.text for p in test.passages}
    per_query = []
    for q, (pair, ranking, rel) in enumerate(zip(test.pairs, rankings, test.relevant)):
        row = {"qid": pair.qid, "query": pair.query, "rank": first_relevant_rank(ranking, rel),
               "ndcg@10": round(query_ndcg(ranking, rel), 6), "pos_ids": pair.pos_ids,
               "top3": [{"id": pid, "text": by_id[pid][:200]} for pid in ranking[:3]]}
        if hybrid_rankings is not None:
            row["hybrid_rank"] = first_relevant_rank(hybrid_rankings[q], rel)
            row["hybrid_ndcg@10"] = round(query_ndcg(hybrid_rankings[q], rel), 6)
        per_query.append(row)
    write_jsonl(metrics_dir / "per_query" / f"{name}.jsonl", per_query)
    write_json(metrics_dir / "curves" / f"{name}.json",
               [{"k": k, "recall": r} for k, r in recall_curve(rankings, test.relevant, CURVE_KS)])
    if pair_scores is not None:
        score_histograms({"positive": pair_scores["positive"], "random negative": pair_scores["negative"]},
                         metrics_dir / "plots" / f"similarity_{name}.png",
                         f"{name}: similarity of test queries to positives vs random passages")
    if metrics is not None:
        write_json(metrics_dir / f"{name}.json", metrics)


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


# --------------------------------------------------------------------------------------------------------- report
def run_report(metrics_dir: str | Path, out: str | Path | None = None) -> Path:
    from bgetune.evaluation.significance import compare_per_query
    from bgetune.records import atomic_open
    from bgetune.report import build_report

    metrics_dir = Path(metrics_dir)
    out = Path(out) if out else metrics_dir / "report.html"
    # Is each gain more than the test set's noise? Paired bootstrap of per-query NDCG@10 (seeded: reproducible).
    significance = {f"{r['model']}_vs_{r['reference']}": {k: r[k] for k in (
        "difference", "ci_low", "ci_high", "p_b_not_better", "queries")} for r in compare_per_query(metrics_dir)}
    write_json(metrics_dir / "significance.json", significance)
    for name, r in significance.items():
        log.info("significance %s: NDCG@10 %+.4f, 95%% CI [%+.4f, %+.4f]", name, r["difference"], r["ci_low"],
                 r["ci_high"])
    with atomic_open(out) as handle:
        handle.write(build_report(metrics_dir))
    log.info("report: %s", out)
    return out
