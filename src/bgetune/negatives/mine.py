"""Mine negatives for every training pair and build FlagEmbedding-format training examples.

Example::

    examples, report = mine(passages, train_pairs, model, params.mining, seed=42, instruction="")
    write_jsonl("data/train.jsonl", examples)
"""
from __future__ import annotations

import time

import numpy as np

from bgetune.negatives.dense import dense_candidates
from bgetune.negatives.guard import NegativeGuard
from bgetune.negatives.mixer import MiningQuery, mix_negatives, quota_plan
from bgetune.records import InputError, Pair, Passage, TrainExample
from bgetune.search import encode


def mine(passages: list[Passage], pairs: list[Pair], model, mining_params, seed: int, instruction: str = "",
         progress: bool = True) -> tuple[list[TrainExample], dict]:
    timings = {}
    index_of = {p.id: i for i, p in enumerate(passages)}
    for pair in pairs:
        unknown = [pid for pid in pair.pos_ids if pid not in index_of]
        if unknown:
            raise InputError(f"pair {pair.qid!r}: positive passage ids not in the corpus: {unknown[:3]}")
    start = time.perf_counter()
    passage_vectors = encode(model, [p.text for p in passages], mining_params.encode_batch_size, progress=progress)
    query_vectors = encode(model, [p.query for p in pairs], mining_params.encode_batch_size, instruction, progress)
    timings["encode_s"] = round(time.perf_counter() - start, 2)

    positive_scores = [max(float(query_vectors[q] @ passage_vectors[index_of[pid]]) for pid in pair.pos_ids)
                       for q, pair in enumerate(pairs)]
    queries = [MiningQuery(qid=pair.qid, pos_ids=pair.pos_ids, positive_score=positive_scores[q])
               for q, pair in enumerate(pairs)]
    weights = {"dense": 1.0}
    plan = quota_plan(mining_params.num_negatives, mining_params.hard_ratio, weights)

    start = time.perf_counter()
    dense = mining_params.dense
    # Ranks count positives too (rank 1 is usually the positive), as in FlagEmbedding's range_for_sampling.
    candidates = {"dense": dense_candidates(query_vectors, passage_vectors, dense.rank_min, dense.rank_max)}
    timings["search_s"] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    guard = NegativeGuard()
    chosen, stats = mix_negatives(
        queries, candidates, plan, len(passages), guard, seed, [p.id for p in passages],
        dense_score=lambda q, i: float(query_vectors[q] @ passage_vectors[i]))
    timings["mix_s"] = round(time.perf_counter() - start, 2)

    examples = []
    for q, (pair, picked) in enumerate(zip(pairs, chosen)):
        examples.append(TrainExample(
            qid=pair.qid, query=pair.query,
            pos=[passages[index_of[pid]].text for pid in pair.pos_ids], pos_ids=list(pair.pos_ids),
            neg=[passages[i].text for i, *_ in picked], neg_ids=[passages[i].id for i, *_ in picked],
            neg_strategies=[strategy for _, strategy, *_ in picked],
            pos_scores=[round(float(query_vectors[q] @ passage_vectors[index_of[pid]]), 6) for pid in pair.pos_ids],
            neg_scores=[round(float(score), 6) for _, _, score, _ in picked],
        ))
    report = {"plan": plan, **stats, "timings": timings,
              "mean_positive_score": round(float(np.mean(positive_scores)), 4) if positive_scores else None}
    return examples, report
