"""The reranked hybrid of the evaluate stage: models/reranker (the rerank stage's cross-encoder) reorders each test
question's hybrid top ``rerank.top_k`` (the dense top k when eval.hybrid is off), blended with the hybrid at
``rerank.weight`` or the weight val ranks best; the passages below the k keep the hybrid's order. Scoring and the
blend are bgetune.reranking; this module builds the candidate lists the hybrid fused, on test and on val.

Example::

    rankings, block = rerank_hybrid(params, root, model, instruction, device, precision, test, val, test_lists,
                                    depth, weights, False, None, encoded, windows, progress=False)
"""
from __future__ import annotations

import time
from pathlib import Path


def rerank_hybrid(params, root: Path, model, instruction: str, device: str, precision: str, test, val,
                  test_lists: tuple, depth: int, weights: list[float], reweigh_val_bm25: bool, term_weights,
                  encoded: tuple, windows: tuple[int, int] | None, progress: bool) -> tuple[list[list[str]], dict]:
    """``test_lists``: the test split's (dense ids, dense scores, BM25 ids, BM25 scores) as the hybrid fused them at
    ``weights``, ``depth`` deep; ``encoded``: (passage vectors, window vectors, window owners, window weight) of the
    corpus, reused for val when it ranks the same one; ``windows``: eval.windows' (max_chars, overlap_chars) or None;
    ``reweigh_val_bm25``: val kept the learned term weights, so its BM25 (loaded plain) is ranked again with them.
    Returns the test rankings and the results block (without the metrics, which the stage computes)."""
    from bgetune.device import resolve_precision
    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all_scored
    from bgetune.evaluation.retrieval import bm25_rankings, dense_rankings
    from bgetune.reranking import RerankError, load_reranker, reranked, score_candidates, tune_weight

    settings, hybrid = params.rerank, params.eval.hybrid
    folder = root / "models/reranker"
    if not (folder / "config.json").exists():
        raise RerankError(f"{folder}: no reranker in it, but rerank.enabled is true: run the rerank stage first "
                          "(dvc repro)")
    started = time.perf_counter()

    def candidates(lists, depth):
        dense_ids, dense_scores, bm25_ids, bm25_scores = lists
        if hybrid.enabled:
            fused = fuse_all_scored(dense_ids, bm25_ids, weights, hybrid.rrf_k, depth, hybrid.method, dense_scores,
                                    bm25_scores)
        else:
            fused = [(ids[:depth], scores[:depth]) for ids, scores in zip(dense_ids, dense_scores)]
        return [(ids[:settings.top_k], scores[:settings.top_k]) for ids, scores in fused], [ids for ids, _ in fused]

    reranker = load_reranker(folder, settings.max_length, device, params.model.trust_remote_code)
    scoring_precision = resolve_precision(settings.precision, device)

    def scored(split, tops):
        return score_candidates(reranker, split.queries, [ids for ids, _ in tops],
                                lambda pid: split.texts[split.index_of[pid]], settings.predict_batch_size,
                                scoring_precision, progress)

    test_tops, test_rest = candidates(test_lists, depth)
    weight, tuning = settings.weight, None
    if settings.tune:
        vectors, window_vectors, owners, window_weight = encoded
        same = list(val.ids) == list(test.ids)
        val_ranked = dense_rankings(
            model, val.texts, val.ids, val.queries, FUSION_POOL, instruction, params.eval.encode_batch_size, False,
            passage_vectors=vectors if same else None, device=device, precision=precision,
            windows=windows if window_weight else None,
            window_vectors=(window_vectors, owners) if same and window_weight and window_vectors is not None
            else None, window_weight=window_weight)
        val_bm25 = bm25_rankings(val.texts, val.ids, val.queries, FUSION_POOL, with_scores=True,
                                 lexical=params.lexical, term_weights=term_weights) if reweigh_val_bm25 \
            else (val.bm25, val.bm25_scores)
        val_tops, _ = candidates((val_ranked.ids, val_ranked.scores, *val_bm25), FUSION_POOL)
        weight, trials = tune_weight(val_tops, scored(val, val_tops), val.relevant)
        tuning = {"val_queries": len(val.pairs), "trials": trials}
    rankings = reranked(test_tops, scored(test, test_tops), weight, test_rest)
    in_top_k = [bool(set(ids) & relevant) for (ids, _), relevant in zip(test_tops, test.relevant)]
    return rankings, {"reranker": "models/reranker", "candidates": "hybrid" if hybrid.enabled else "dense",
                      "top_k": settings.top_k, "weight": weight, "tuning": tuning,
                      "top_k_holds_a_relevant_passage": round(sum(in_top_k) / max(len(in_top_k), 1), 6),
                      "pairs_scored": sum(len(ids) for ids, _ in test_tops), "precision": scoring_precision,
                      "seconds": round(time.perf_counter() - started, 2)}
