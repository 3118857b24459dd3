"""Mine negatives for every training pair with the strategies weighted in params, and build FlagEmbedding-format
training examples with each negative's id, strategy and (teacher) score.

Example::

    examples, report = mine(passages, train_pairs, model, params.mining, seed=42, instruction="")
    write_jsonl("data/train.jsonl", examples)
"""
from __future__ import annotations

import logging
import time

import numpy as np

from bgetune.negatives.guard import NegativeGuard
from bgetune.negatives.mixer import MiningQuery, mix_negatives, quota_plan
from bgetune.records import InputError, Pair, Passage, TrainExample
from bgetune.search import encode, gpu_search_available, recall_against_exact, top_k

log = logging.getLogger(__name__)
RECALL_SAMPLE = 200


def mine(passages: list[Passage], pairs: list[Pair], model, mining_params, seed: int, instruction: str = "",
         progress: bool = True, device: str = "cpu", precision: str = "fp32") -> tuple[list[TrainExample], dict]:
    params = mining_params
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[f"{name}_s"] = round(now - clock, 3)
        clock = now

    index_of = {p.id: i for i, p in enumerate(passages)}
    for pair in pairs:
        unknown = [pid for pid in pair.pos_ids if pid not in index_of]
        if unknown:
            raise InputError(f"pair {pair.qid!r}: positive passage ids not in the corpus: {unknown[:3]}")
    texts = [p.text for p in passages]
    queries = [p.query for p in pairs]
    positive_indices = [[index_of[pid] for pid in pair.pos_ids] for pair in pairs]

    passage_vectors = encode(model, texts, params.encode_batch_size, progress=progress, kind="document",
                             precision=precision)
    query_vectors = encode(model, queries, params.encode_batch_size, instruction, progress, kind="query",
                           precision=precision)
    lap("encode")

    plan = quota_plan(params.num_negatives, params.hard_ratio, params.weights)
    unplanned = [k for k, w in params.weights.items() if w > 0 and not plan.get(k)]
    if unplanned:   # a small weight can round to no negative at all: say so rather than drop it silently
        log.warning("mining.weights: %s rounded to no negative of the %d hard ones per query (num_negatives %d × "
                    "hard_ratio %g, shared by weight); raise the weight or num_negatives to use it",
                    ", ".join(unplanned), params.num_negatives - plan.get("random", 0), params.num_negatives,
                    params.hard_ratio)
    candidates: dict[str, list] = {}
    report: dict = {"plan": plan}
    if "dense" in plan:
        kind = params.dense.index
        if kind == "auto":
            # Exact search on a GPU is fast at any corpus size; on a CPU an approximate index above the threshold.
            on_gpu = str(device).startswith("cuda") and gpu_search_available()
            kind = "hnsw" if len(passages) > params.dense.approximate_above and not on_gpu else "flat"
        candidates["dense"] = _dense(query_vectors, passage_vectors, params.dense, kind, report, device)
        lap("search_dense")
    if "bm25" in plan:
        from bgetune.negatives.bm25 import bm25_candidates

        candidates["bm25"] = bm25_candidates(texts, queries, params.bm25.rank_min, params.bm25.rank_max,
                                             lexical=params.bm25.lexical())
        report["bm25"] = params.bm25.lexical().model_dump()
        lap("search_bm25")
    if "tfidf" in plan:
        from bgetune.negatives.tfidf import tfidf_candidates

        candidates["tfidf"] = tfidf_candidates(texts, queries, params.tfidf.rank_min, params.tfidf.rank_max,
                                               params.tfidf.analyzer, params.tfidf.ngram)
        lap("search_tfidf")
    if "keyword" in plan:
        from bgetune.negatives.keyword import keyword_candidates

        candidates["keyword"] = keyword_candidates(texts, queries, params.keyword.top_keywords,
                                                   params.keyword.method, params.keyword.max_candidates)
        lap("search_keyword")
    if "cross_domain" in plan:
        from bgetune.negatives.cross_domain import cross_domain_candidates, passage_domains

        domains, source = passage_domains([p.domain for p in passages], passage_vectors,
                                          params.cross_domain.clusters, seed)
        report["cross_domain_labels"] = {"source": source, "domains": len(set(domains))}
        own = [{domains[i] for i in positives} for positives in positive_indices]
        candidates["cross_domain"] = cross_domain_candidates(query_vectors, passage_vectors, domains, own,
                                                             params.cross_domain.max_candidates)
        lap("search_cross_domain")
    if "length" in plan:
        from bgetune.negatives.length import length_candidates

        positive_lengths = [float(np.mean([len(texts[i]) for i in positives])) for positives in positive_indices]
        candidates["length"] = length_candidates([len(t) for t in texts], positive_lengths,
                                                 params.length.tolerance, params.length.max_candidates)
        lap("search_length")
    random_excluded = None
    if params.random.mode == "far" and plan.get("random", 0):
        # "Far" anchors: anything but the base model's top far_rank (or the top half of a smaller corpus).
        far = min(params.random.far_rank, max(1, len(passages) // 2))
        _, near = top_k(query_vectors, passage_vectors, far, device=device)
        random_excluded = [set(row.tolist()) for row in near]
        lap("search_far_random")

    positive_scores = [max(float(query_vectors[q] @ passage_vectors[i]) for i in positives)
                       for q, positives in enumerate(positive_indices)]
    missing_given = sum(pid not in index_of for pair in pairs for pid in pair.neg_ids)
    mining_queries = [MiningQuery(qid=pair.qid, pos_ids=pair.pos_ids, positive_score=positive_scores[q],
                                  positive_docs={passages[i].doc_id for i in positive_indices[q]},
                                  given=[index_of[pid] for pid in pair.neg_ids if pid in index_of])
                      for q, pair in enumerate(pairs)]
    if missing_given:
        report["given_negatives_not_in_corpus"] = missing_given
    guard = NegativeGuard(params.guard.relative_margin, params.guard.max_score, params.guard.exclude_same_document)
    chosen, stats = mix_negatives(
        mining_queries, candidates, plan, len(passages), guard, seed, [p.id for p in passages],
        passage_docs=[p.doc_id for p in passages],
        dense_score=lambda q, i: float(query_vectors[q] @ passage_vectors[i]), random_excluded=random_excluded)
    lap("mix")

    examples = []
    for q, (pair, picked) in enumerate(zip(pairs, chosen)):
        example = TrainExample(
            qid=pair.qid, query=pair.query,
            pos=[texts[i] for i in positive_indices[q]], pos_ids=list(pair.pos_ids),
            neg=[texts[i] for i, *_ in picked], neg_ids=[passages[i].id for i, *_ in picked],
            neg_strategies=[strategy for _, strategy, *_ in picked])
        # The scoring model's cosines: FlagEmbedding's teacher-score fields (mining.teacher may replace them).
        example.pos_scores = [round(float(query_vectors[q] @ passage_vectors[i]), 6) for i in positive_indices[q]]
        example.neg_scores = [round(float(score), 6) for _, _, score, _ in picked]
        examples.append(example)
    report.update(stats)
    report["candidates_per_strategy"] = {k: sum(len(c) for c in v) for k, v in candidates.items()}
    report["mean_positive_score"] = round(float(np.mean(positive_scores)), 4) if positive_scores else None
    report["timings"] = timings
    return examples, report


def _dense(query_vectors, passage_vectors, dense_params, kind: str, report: dict, device: str = "cpu"):
    from bgetune.negatives.dense import dense_candidates

    lists = dense_candidates(query_vectors, passage_vectors, dense_params.rank_min, dense_params.rank_max, kind,
                             device)
    report["dense_index"] = kind
    report["dense_search_on"] = "gpu" if kind == "flat" and str(device).startswith("cuda") and \
        gpu_search_available() else "cpu"
    if kind != "flat":
        # The approximate index's recall against exact search, on a fixed sample of queries.
        sample = query_vectors[:RECALL_SAMPLE]
        _, exact = top_k(sample, passage_vectors, dense_params.rank_max, "flat")
        _, approx = top_k(sample, passage_vectors, dense_params.rank_max, kind)
        report["dense_index_recall"] = round(recall_against_exact(approx, exact), 4)
        log.info("dense index %s: recall@%d vs exact %.4f", kind, dense_params.rank_max, report["dense_index_recall"])
    return lists
