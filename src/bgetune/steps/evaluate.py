"""evaluate <name>: one retriever on the test split — ``base`` (model.base as shipped), ``finetuned``, ``merged``,
``bm25`` (params.lexical's BM25, the baseline) or ``extra <key>`` (a model from eval.extra_models).

Writes metrics/<name>.json — the headline numbers only (NDCG@10, Recall@1/10/100, MRR@10, MAP@10, hybrid
NDCG@10, with rerank.enabled the reranked hybrid's NDCG@10 for finetuned and merged, pair AUC), what ``dvc metrics
diff`` compares — and, for the report, results/eval/<name>.json (every metric: at every k, passage and document
level, pair, noise both ways, hybrid, reranked, general set, counts, device, timings), results/per_query/<name>.jsonl
(each test query's rank, NDCG@10 and top passages), results/curves/<name>.json (Recall@k) and, for dense models,
results/plots/similarity_<name>.png; ``bm25`` also writes results/eval/bm25_term_weights.json (eval.term_weights:
the hybrid's learned query-term weights, empty when off).

Reads params: seed, eval, lexical, model.* (dense models), rerank (finetuned and merged: models/reranker).

Example::

    headline = run(load_params(), "finetuned", root=".")
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import write_json, write_jsonl

log = logging.getLogger("bgetune")
HEADLINE = ("ndcg@10", "recall@1", "recall@10", "recall@100", "mrr@10", "map@10", "hybrid_ndcg@10",
            "reranked_ndcg@10", "pair_auc")
# The models whose hybrid models/reranker reorders (rerank.enabled): the two the rerank stage runs before.
RERANKED = ("finetuned", "merged")
CURVE_KS = (1, 2, 3, 5, 10, 20, 50, 100)
PIPELINE_MODELS = ("base", "finetuned", "merged", "bm25")
TERM_WEIGHTS_FILE = "results/eval/bm25_term_weights.json"


def outputs(name: str, dense: bool) -> list[str]:
    file = name.replace("/", "_")
    outs = [f"metrics/{file}.json", f"results/eval/{file}.json", f"results/per_query/{file}.jsonl",
            f"results/curves/{file}.json"]
    # The lexical stage also writes the hybrid's learned query-term weights, the table a deployment loads.
    return outs + ([f"results/plots/similarity_{file}.png"] if dense else [TERM_WEIGHTS_FILE])


def run(params, name: str, root: str | Path = ".", progress: bool = True, extra_reference: str | None = None) -> dict:
    from bgetune.evaluation.term_weights import learn_term_weights
    from bgetune.evaluation.testset import load_test_set

    root = Path(root)
    started = time.perf_counter()
    k = max(max(params.eval.k_values), max(CURVE_KS))
    learned = learn_term_weights(root, params)
    if name == "bm25":
        # The baseline is plain BM25; the learned weights are scored beside it (the hybrid's lexical half alone).
        test = load_test_set(root, params.eval, k, lexical=params.lexical)
        results, per_query_extra, pair_scores = lexical_results(params, test, k, learned)
        rankings, scores = test.bm25, test.bm25_scores
        hybrid = reranked = None
    else:
        # A dense model's test set ranks BM25 only for the hybrid: with the learned weights when they are on (and
        # not left to val, which then ranks test a second time if it keeps them).
        test = load_test_set(root, params.eval, k, lexical=params.lexical,
                             term_weights=learned.weights if learned and not choosing_term_weights(params, learned)
                             else None)
        results, rankings, scores, hybrid, reranked, pair_scores = dense_results(
            params, name, root, test, k, progress, extra_reference, learned)
    results.update({"queries": len(test.pairs), "passages": len(test.ids), "documents": len(set(test.doc_of.values())),
                    **test.leakage, "seconds": round(time.perf_counter() - started, 2)})
    headline = headline_metrics(results, params.eval.level)
    rows = per_query_rows(test, rankings, scores, hybrid, params.eval, reranked)
    file = name.replace("/", "_")
    with StageOutputs(f"evaluate-{file}", outputs(name, name != "bm25"), root) as out:
        write_json(out.path(f"metrics/{file}.json"), headline)
        write_json(out.path(f"results/eval/{file}.json"), results)
        write_jsonl(out.path(f"results/per_query/{file}.jsonl"), rows)
        from bgetune.evaluation.metrics import recall_curve

        write_json(out.path(f"results/curves/{file}.json"),
                   [{"k": kk, "recall": r} for kk, r in recall_curve(rankings, test.relevant, CURVE_KS)])
        if name == "bm25":
            write_json(out.path(TERM_WEIGHTS_FILE), term_weights_table(params, learned))
        else:
            from bgetune.plots import score_histograms

            score_histograms({"positive": pair_scores["positive"], "random negative": pair_scores["negative"]},
                             out.path(f"results/plots/similarity_{file}.png"),
                             f"{name}: similarity of test queries to positives vs random passages")
    log.info("evaluate %s: %s", name, " ".join(f"{key}={value:.4f}" for key, value in headline.items()))
    return headline


def headline_metrics(results: dict, level: str) -> dict:
    block = results.get(level) or results["passage"]
    values = {key: block[key] for key in HEADLINE if key in block}
    for fused in ("hybrid", "reranked"):
        if fused in results and "ndcg@10" in results[fused].get(level, {}):
            values[f"{fused}_ndcg@10"] = results[fused][level]["ndcg@10"]
    if "pair" in results and "pair_auc" in results["pair"]:
        values["pair_auc"] = results["pair"]["pair_auc"]
    return {key: values[key] for key in HEADLINE if key in values}


def level_metrics(rankings, scores, test, eval_params) -> dict:
    """Passage-level metrics, and document-level ones when documents span several passages."""
    from bgetune.evaluation.documents import document_ranking, spans_several_passages
    from bgetune.evaluation.metrics import ranking_metrics

    out = {"passage": ranking_metrics(rankings, test.relevant, eval_params.k_values)}
    if spans_several_passages(test.doc_of) or eval_params.level == "document":
        scores = scores or [None] * len(rankings)
        documents = [document_ranking(r, s, test.doc_of, eval_params.doc_score) for r, s in zip(rankings, scores)]
        out["document"] = ranking_metrics(documents, test.relevant_documents, eval_params.k_values)
        out["document_rankings"] = documents
    return out


def lexical_results(params, test, k: int, learned=None):
    from bgetune.evaluation.general import general_bm25_metrics, load_general_set
    from bgetune.evaluation.retrieval import bm25_rankings

    levels = level_metrics(test.bm25, test.bm25_scores, test, params.eval)
    levels.pop("document_rankings", None)
    results = {"lexical": params.lexical.model_dump(), **levels}
    if learned is not None:
        # The test set already read: only its BM25 ranking is redone, with the weights.
        ids, scores = bm25_rankings(test.texts, test.ids, test.queries, k, with_scores=True, lexical=params.lexical,
                                    term_weights=learned.weights)
        weighted_levels = level_metrics(ids, scores, test, params.eval)
        weighted_levels.pop("document_rankings", None)
        results["term_weighted"] = {"term_weights": learned.summary(), **weighted_levels}
        log.info("evaluate bm25: with the learned term weights NDCG@10 %.4f (plain %.4f)",
                 weighted_levels["passage"]["ndcg@10"], levels["passage"]["ndcg@10"])
    general = load_general_set(params.eval.general, params.seed)
    if general is not None:
        results["general"] = general_bm25_metrics(general, params.eval.k_values, params.lexical)
    return results, None, None


def term_weights_table(params, learned) -> dict:
    """results/eval/bm25_term_weights.json: what a deployment needs to rank as the hybrid did — the BM25 setting and
    each query term's weight (a term not listed weighs 1); method off: no weights."""
    table = {"lexical": params.lexical.model_dump(), "method": params.eval.term_weights.method,
             "smoothing": params.eval.term_weights.smoothing,
             "score": "sum over the query's terms of weight × the term's BM25 score", "weights": {}}
    if learned is not None:
        table.update(train_questions=learned.train_questions, weights=learned.weights)
    return table


def dense_results(params, name: str, root: Path, test, k: int, progress: bool, extra_reference: str | None,
                  learned=None):
    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.evaluation.general import general_metrics, load_general_set
    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all
    from bgetune.evaluation.noise import load_noise_texts, noise_as_queries, noise_similarity
    from bgetune.evaluation.pairs import pair_metrics
    from bgetune.evaluation.retrieval import bm25_rankings, dense_rankings, encode_windows
    from bgetune.evaluation.testset import load_test_set
    from bgetune.search import encode

    eval_params = params.eval
    device = resolve_device(params.model.device)
    precision = resolve_precision(params.model.precision, device)
    model, instruction, reference = model_for(params, name, root, device, extra_reference)
    batch = eval_params.encode_batch_size
    passage_vectors = encode(model, test.texts, batch, progress=progress, kind="document", precision=precision)
    windows, window_vectors, window_summary = window_setting(eval_params), None, None
    # Both tunings rank the val split: loaded once for the two. Val choosing whether the hybrid keeps the learned
    # term weights loads it with plain BM25 and ranks the weighted one beside it.
    term_weights = learned.weights if learned else None
    choosing = choosing_term_weights(params, learned)
    hybrid_on_val = eval_params.hybrid.enabled and (eval_params.hybrid.tune or choosing)
    reranking = params.rerank.enabled and extra_reference is None and name in RERANKED
    val = load_test_set(root, eval_params, FUSION_POOL, split="val", lexical=params.lexical,
                        term_weights=None if choosing else term_weights) if (
        (windows and eval_params.windows.tune) or hybrid_on_val or (reranking and params.rerank.tune)) else None
    if windows:
        window_vectors = encode_windows(model, test.texts, windows, batch, precision, progress)
        owners = window_vectors[1]
        # No passage longer than a window: one vector per passage, nothing to tune.
        weight, tuning = tuned_window_weight(params, root, model, instruction, device, precision,
                                             (test.ids, passage_vectors, *window_vectors), val) \
            if len(owners) else (0.0, None)
        window_summary = {"max_chars": windows[0], "overlap_chars": windows[1], "weight": weight,
                          "tuning": tuning, "passages": len(test.ids),
                          "passages_with_windows": len(set(owners.tolist())), "window_vectors": len(owners)}
        log.info("evaluate %s: %d of %d passages also indexed as %d windows of up to %d characters; window weight "
                 "%.1f%s", name, window_summary["passages_with_windows"], len(test.ids), len(owners), windows[0],
                 weight, " (chosen on val)" if tuning else "")
    # Weight 0 (val's choice, or no passage long enough) is one vector per passage: ranked as without windows.
    weight = window_summary["weight"] if window_summary else 0.0
    if not weight:
        windows = window_vectors = None
    ranked = dense_rankings(model, test.texts, test.ids, test.queries, k, instruction, batch, progress,
                            passage_vectors=passage_vectors, device=device, precision=precision, windows=windows,
                            window_vectors=window_vectors, window_weight=weight)
    levels = level_metrics(ranked.ids, ranked.scores, test, eval_params)
    document_rankings = levels.pop("document_rankings", None)
    results = {"model": reference, "query_instruction": instruction, **levels,
               "runtime": runtime(device, precision)}
    if window_summary:
        results["windows"] = window_summary
    positives = [[test.index_of[i] for i in p.pos_ids if i in test.index_of] for p in test.pairs]
    pair, pair_scores = pair_metrics(ranked.query_vectors, ranked.passage_vectors, positives,
                                     eval_params.pair_negatives, params.seed)
    results["pair"] = pair
    noise = load_noise_texts(str(root / eval_params.noise_texts) if eval_params.noise_texts else "")
    best_positive = [max(float(ranked.query_vectors[q] @ ranked.passage_vectors[i]) for i in pos) if pos else 0.0
                     for q, pos in enumerate(positives)]
    results["noise"] = {
        **noise_similarity(ranked.query_vectors, encode(model, noise, batch, progress=False, kind="document",
                                                        precision=precision), best_positive),
        **noise_as_queries(encode(model, noise, batch, instruction, False, kind="query", precision=precision),
                           ranked.passage_vectors, best_positive)}
    hybrid = reranked = None
    settings = eval_params.hybrid
    weights, weighted = list(settings.weights), learned is not None
    bm25_ids, bm25_scores = test.bm25, test.bm25_scores
    if settings.enabled:
        tuning = None
        if hybrid_on_val:
            weights, tuning, weighted = tuned_hybrid_weights(
                params, root, model, instruction, device, precision,
                (test.ids, ranked.passage_vectors, ranked.window_vectors, ranked.window_owners), weight, val,
                term_weights, choosing)
        if choosing and weighted:
            # Val kept the weights: test's BM25 (ranked plain when loaded) is ranked again with them.
            bm25_ids, bm25_scores = bm25_rankings(test.texts, test.ids, test.queries, k, with_scores=True,
                                                  lexical=params.lexical, term_weights=term_weights)
        hybrid = fuse_all(ranked.ids, bm25_ids, weights, settings.rrf_k, k, settings.method, ranked.scores,
                          bm25_scores)
        fused_levels = level_metrics(hybrid, None, test, eval_params)
        fused_levels.pop("document_rankings", None)
        bm25 = params.lexical.model_dump()
        if weighted:
            bm25["term_weights"] = {key: value for key, value in learned.summary().items()
                                    if key not in ("lowest", "highest")}
        results["hybrid"] = {"method": settings.method, "weights": weights, "rrf_k": settings.rrf_k,
                             "bm25": bm25, "tuning": tuning, **fused_levels}
    if reranking:
        from bgetune.evaluation.reranked import rerank_hybrid

        reranked, block = rerank_hybrid(
            params, root, model, instruction, device, precision, test, val,
            (ranked.ids, ranked.scores, bm25_ids, bm25_scores), k, weights, weighted and choosing, term_weights,
            (ranked.passage_vectors, ranked.window_vectors, ranked.window_owners, weight), window_setting(eval_params),
            progress)
        reranked_levels = level_metrics(reranked, None, test, eval_params)
        reranked_levels.pop("document_rankings", None)
        results["reranked"] = {**block, **reranked_levels}
        log.info("reranked: the %s's top %d reordered at reranker weight %.1f%s; NDCG@10 %.4f", block["candidates"],
                 block["top_k"], block["weight"], " (chosen on val)" if block["tuning"] else " (rerank.weight)",
                 reranked_levels["passage"]["ndcg@10"])
    general = load_general_set(eval_params.general, params.seed)
    if general is not None:
        results["general"] = general_metrics(model, instruction, general, eval_params.k_values, batch, progress,
                                             device, precision, windows, weight)
    if document_rankings is not None:
        results["document_level"] = {"doc_score": eval_params.doc_score}
    return results, ranked.ids, ranked.scores, hybrid, reranked, pair_scores


def window_setting(eval_params) -> tuple[int, int] | None:
    """(max_chars, overlap_chars) of ``eval.windows``, or None when it is off."""
    windows = eval_params.windows
    return (windows.max_chars, windows.overlap_chars) if windows.max_chars else None


def tuned_window_weight(params, root: Path, model, instruction: str, device: str, precision: str,
                        encoded_corpus: tuple, val=None) -> tuple[float, dict | None]:
    """``eval.windows.weight``, or with ``tune`` the weight val ranks best (``tune_window_weight``), and the
    trials. ``encoded_corpus``: (passage ids, their vectors, window vectors, window owners) of the test split's
    corpus, which val ranks too (the vectors are reused when the ids match); ``val``: the val split if loaded."""
    from bgetune.evaluation.hybrid import FUSION_POOL
    from bgetune.evaluation.retrieval import encode_windows, tune_window_weight, window_candidates
    from bgetune.evaluation.testset import load_test_set
    from bgetune.search import encode

    settings = params.eval.windows
    if not settings.tune:
        return settings.weight, None
    val = val if val is not None else load_test_set(root, params.eval, FUSION_POOL, split="val",
                                                   lexical=params.lexical)
    batch = params.eval.encode_batch_size
    ids, vectors, window_vectors, owners = encoded_corpus
    if list(ids) != list(val.ids):
        vectors = encode(model, val.texts, batch, progress=False, kind="document", precision=precision)
        window_vectors, owners = encode_windows(model, val.texts, window_setting(params.eval), batch, precision)
    queries = encode(model, val.queries, batch, instruction, False, kind="query", precision=precision)
    candidates = window_candidates(queries, vectors, window_vectors, owners, FUSION_POOL, device)
    weight, trials = tune_window_weight(candidates, val.ids, val.relevant)
    log.info("window weight chosen on val: %.1f (val NDCG@10 %.4f; one vector per passage %.4f)", weight,
             max(t["val_ndcg@10"] for t in trials), trials[0]["val_ndcg@10"])
    return weight, {"val_queries": len(val.pairs), "trials": trials}


def choosing_term_weights(params, learned) -> bool:
    """Whether val decides if the hybrid's BM25 keeps the learned query-term weights (``eval.term_weights.tune``)."""
    return learned is not None and params.eval.term_weights.tune and params.eval.hybrid.enabled


def tuned_hybrid_weights(params, root: Path, model, instruction: str, device: str, precision: str,
                         encoded_corpus: tuple | None = None, window_weight: float = 0.0, val=None,
                         term_weights: dict[str, float] | None = None, choose_term_weights: bool = False):
    """The [dense, bm25] weights of ``eval.hybrid.method``'s fusion chosen on the val split (``eval.hybrid.weights``
    when ``tune`` is off), and whether its BM25 weighs query terms. ``encoded_corpus``: (passage ids, their vectors,
    window vectors, window owners) the test split already encoded with this model; val ranks the same corpus, so
    they are reused when the ids match (one corpus encode per evaluation instead of two); ``val``: the val split if
    loaded (else loaded here, its BM25 with ``term_weights`` unless val chooses). ``choose_term_weights``: val's BM25
    is plain and is also ranked with ``term_weights``; the fusion keeps whichever ranks val better (ties: plain).
    Returns (weights, the tuning record, whether the BM25 is term-weighted)."""
    from bgetune.evaluation.hybrid import FUSION_POOL, tune_lexical
    from bgetune.evaluation.retrieval import bm25_rankings, dense_rankings
    from bgetune.evaluation.testset import load_test_set

    val = val if val is not None else load_test_set(
        root, params.eval, FUSION_POOL, split="val", lexical=params.lexical,
        term_weights=None if choose_term_weights else term_weights)
    vectors = windows = None
    if encoded_corpus is not None and list(encoded_corpus[0]) == list(val.ids):
        vectors = encoded_corpus[1]
        if encoded_corpus[2] is not None:
            windows = (encoded_corpus[2], encoded_corpus[3])
    ranked = dense_rankings(model, val.texts, val.ids, val.queries, FUSION_POOL, instruction,
                            params.eval.encode_batch_size, False, passage_vectors=vectors, device=device,
                            precision=precision, windows=window_setting(params.eval) if window_weight else None,
                            window_vectors=windows, window_weight=window_weight)
    settings = params.eval.hybrid
    # Val's BM25 as loaded: weighted only when the weights are on and not left to val.
    loaded_as = "term_weighted" if term_weights is not None and not choose_term_weights else "plain"
    lexical = {loaded_as: (val.bm25, val.bm25_scores)}
    if choose_term_weights:
        lexical["term_weighted"] = bm25_rankings(val.texts, val.ids, val.queries, FUSION_POOL, with_scores=True,
                                                 lexical=params.lexical, term_weights=term_weights)
    chosen, options = tune_lexical(settings.method, ranked.ids, ranked.scores, lexical, val.relevant,
                                   settings.rrf_k, None if settings.tune else list(settings.weights))
    weights = options[chosen]["weights"]
    tuning = {"val_queries": len(val.pairs), "trials": options[chosen]["trials"] if settings.tune else None}
    if choose_term_weights:
        tuning["bm25"] = {"chosen": chosen, **{f"{name}_val_ndcg@10": option["val_ndcg@10"]
                                               for name, option in options.items()}}
        log.info("hybrid BM25 chosen on val: %s (val NDCG@10 plain %.4f, term-weighted %.4f)", chosen,
                 options["plain"]["val_ndcg@10"], options["term_weighted"]["val_ndcg@10"])
    log.info("hybrid (%s) weights %s: dense %.2f, bm25 %.2f", settings.method,
             "chosen on val" if settings.tune else "from eval.hybrid.weights", *weights)
    return weights, tuning, chosen == "term_weighted"


def model_for(params, name: str, root: Path, device: str, extra_reference: str | None):
    """(model, query instruction, reference) for a pipeline model name or an extra model."""
    from bgetune.models import instructions, load_model, query_instruction_for

    lengths = (params.model.query_max_length, params.model.passage_max_length)
    _, instruction = instructions(params.model, params.model.base)
    if name == "base":
        model = load_model(params.model.base, device, *lengths, params.model.pooling, params.model.trust_remote_code)
        return model, instruction, params.model.base
    if extra_reference is not None:
        model = load_model(extra_reference, device, *lengths, params.model.pooling, params.model.trust_remote_code,
                           key=f"eval.extra_models.{name}")
        saved = model.prompts.get("query")
        return model, saved if saved is not None else query_instruction_for(
            extra_reference, params.model.query_instruction), extra_reference
    folder = root / "models" / name
    return load_model(str(folder), device, *lengths, key=f"models/{name}"), instruction, f"models/{name}"


def per_query_rows(test, rankings, scores, hybrid, eval_params, reranked=None) -> list[dict]:
    """Each test query: the rank of its first positive, its NDCG@10 at the headline level (what the significance
    test resamples), the hybrid's and the reranked hybrid's, and its top 3 passages."""
    from bgetune.evaluation.documents import document_ranking
    from bgetune.evaluation.metrics import first_relevant_rank, query_ndcg

    by_id = {p.id: p.text for p in test.passages}
    documents = eval_params.level == "document"
    rows = []
    for q, (pair, ranking) in enumerate(zip(test.pairs, rankings)):
        relevant = test.relevant_documents[q] if documents else test.relevant[q]
        ranked = document_ranking(ranking, scores[q] if scores else None, test.doc_of, eval_params.doc_score) \
            if documents else ranking
        row = {"qid": pair.qid, "query": pair.query, "rank": first_relevant_rank(ranked, relevant),
               "ndcg@10": round(query_ndcg(ranked, relevant), 6), "pos_ids": pair.pos_ids,
               "top3": [{"id": pid, "text": by_id[pid][:200]} for pid in ranking[:3]]}
        if hybrid is not None:
            fused = document_ranking(hybrid[q], None, test.doc_of) if documents else hybrid[q]
            row["hybrid_rank"] = first_relevant_rank(fused, relevant)
            row["hybrid_ndcg@10"] = round(query_ndcg(fused, relevant), 6)
        if reranked is not None:
            ordered = document_ranking(reranked[q], None, test.doc_of) if documents else reranked[q]
            row["reranked_rank"] = first_relevant_rank(ordered, relevant)
            row["reranked_ndcg@10"] = round(query_ndcg(ordered, relevant), 6)
        rows.append(row)
    return rows
