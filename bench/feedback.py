"""Pseudo-relevance feedback: does a second retrieval round, fed by the first round's top passages, lift the dense
model, BM25 or the hybrid?

Issue 16's meddialog hybrid target (1.5× BM25) stayed out of reach of the fusion's own settings (normalisation,
weights, a stronger BM25): the hybrid follows the dense model. Feedback is the retrieval-side lever those left out;
it costs a second search per query and no training. Two classic forms, each fed from the retriever's own top k or
from the hybrid's (the better first round):

- **Rocchio on the query vector** (dense; Li et al. 2021, "Pseudo Relevance Feedback with Deep Language Models
  and Dense Retrievers"): q' = normalise(q + β · mean of the top-k passage vectors), ranked again as the evaluate
  stage ranks (sentence windows at the val weight).
- **RM3-style query expansion** (BM25; Lavrenko & Croft's relevance model as Anserini's RM3 uses it): the top-k
  passages' terms, each scored Σ_d P(d|q) · tf(t, d) / |d| · idf(t) (idf because character unigrams such as 的
  would otherwise fill the expansion), the best m added to the question's terms at weight λ (the question keeps
  1 − λ), scored as BM25's weighted query terms.

Every setting is chosen on val (the retriever's own NDCG@10 for its row; the re-fused hybrid's for the hybrid
rows, its dense weight tuned again) from a grid that includes no feedback (β 0, λ 0), so val may decline it;
test scores the chosen setting, with paired bootstraps against the same retriever without feedback:

    python bench/feedback.py --dataset meddialog --variant dict_init_hardness --bm25 params
    python bench/feedback.py --dataset cmrc2018 --variant dict_init_hardness --bm25 params

Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder), writes bench/results/<dataset>_feedback.json
and .md (per-query NDCG@10 under bench/results/per_query/<dataset>_feedback/).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

FEEDBACK_DOCS = (1, 3, 5, 10)
ROCCHIO_BETAS = (0.0, 0.1, 0.25, 0.5, 1.0)
EXPANSION_TERMS = (10, 30)
EXPANSION_WEIGHTS = (0.0, 0.1, 0.2, 0.4)


def rocchio(query_vectors: np.ndarray, passage_vectors: np.ndarray, feedback: list[list[int]], k: int,
            beta: float) -> np.ndarray:
    """Each query vector plus ``beta`` × the mean of its first ``k`` feedback passages' vectors, L2-normalised."""
    moved = query_vectors.astype(np.float32, copy=True)
    if beta:
        for row, indices in enumerate(feedback):
            if indices[:k]:
                moved[row] += beta * passage_vectors[indices[:k]].mean(axis=0)
    return moved / np.linalg.norm(moved, axis=1, keepdims=True)


def expanded_query(query_terms: list[str], feedback: list[Counter], feedback_scores: list[float], idf: dict,
                   terms: int, weight: float) -> dict[str, float]:
    """RM3-style term weights: the question's terms (each count / length) at 1 − ``weight``, plus the feedback
    passages' best ``terms`` terms, each Σ_d P(d|q) · tf / |d| · idf (P(d|q): the feedback scores normalised to
    sum to 1), normalised to sum to ``weight``."""
    question = Counter(query_terms)
    if not question:
        return {}
    length = sum(question.values())
    weights = {term: (1.0 - weight) * count / length for term, count in question.items()}
    if not weight or not feedback:
        return weights
    scores = np.asarray(feedback_scores, dtype=np.float64)
    # BM25's scores are positive: P(d|q) in proportion to them (a relevance model weighs each feedback passage by
    # its retrieval score); a list without usable scores (the hybrid's, passed as equal ones; a non-positive
    # score) weighs its passages alike.
    p_doc = scores / scores.sum() if (scores > 0).all() else np.full(len(scores), 1.0 / len(scores))
    relevance: Counter = Counter()
    for p, counts in zip(p_doc, feedback):
        size = sum(counts.values()) or 1
        for term, count in counts.items():
            relevance[term] += p * count / size * idf.get(term, 0.0)
    best = [(t, v) for t, v in sorted(relevance.items(), key=lambda item: (-item[1], item[0]))[:terms] if v > 0]
    total = sum(v for _, v in best)
    for term, value in best:
        weights[term] = weights.get(term, 0.0) + weight * value / total
    return weights


def choose(grid: list[tuple], scores: list[float], feedback_on: bool = False) -> tuple[tuple, float]:
    """The grid's setting (its last field the feedback's weight) with the best val score (``scores``, in grid
    order); ties: the smaller weight (no feedback first), then the earlier setting. ``feedback_on``: among the
    settings with feedback only (what feedback does at its best val setting, where val would decline it)."""
    scored = [(score, -setting[-1], -i, setting) for i, (setting, score) in enumerate(zip(grid, scores))
              if setting[-1] or not feedback_on]
    best = max(scored)
    return best[3], best[0]


class TermScores:
    """BM25's single-term scores as a sparse (vocabulary × passages) matrix, so that a weighted query scores
    every passage in one product. Hand-written because bm25s's retrieve weighs every query term 1 (the stage's
    ``BM25Index`` sums get_scores per term, which is too slow for this bench's grids)."""

    def __init__(self, index):
        from scipy.sparse import csr_matrix

        stored = index.retriever.scores
        self.vocabulary = index.retriever.vocab_dict
        self.matrix = csr_matrix((stored["data"], stored["indices"], stored["indptr"]),
                                 shape=(len(stored["indptr"]) - 1, stored["num_docs"]))

    def top(self, weights: dict[str, float], ids: list[str], k: int) -> tuple[list[str], list[float]]:
        from bgetune.evaluation.retrieval import SCORE_DECIMALS

        if not weights:
            return ids[:k], [0.0] * min(k, len(ids))      # no corpus term: unranked, corpus order (as BM25Index)
        rows = [self.vocabulary[t] for t in weights]
        scores = np.asarray(self.matrix[rows].T @ np.fromiter(weights.values(), dtype=np.float64)).ravel()
        order = np.argsort(-np.round(scores, SCORE_DECIMALS), kind="stable")[:k]     # ties by passage order
        return [ids[i] for i in order], [float(scores[i]) for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import (add_stored_model_args, git_commit, headline_and_per_query, interval, load_stored_model,
                             machine, stage_dense_side, stored_model_footer, write_stored_model_bench)

    add_stored_model_args(parser)
    args = parser.parse_args()

    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all, tune_weights
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.evaluation.testset import load_test_set
    from bgetune.lexical import BM25Index
    from bgetune.search import encode
    from bgetune.text import lexical_tokens_of

    started = time.perf_counter()
    root, params, device, precision, model, instruction = load_stored_model(args)
    batch = params.eval.encode_batch_size
    splits = {name: load_test_set(root, params.eval, FUSION_POOL, split=name, lexical=params.lexical)
              for name in ("test", "val")}
    test, val = splits["test"], splits["val"]
    ids, index_of = test.ids, test.index_of
    passage_vectors, windows, window_vectors, window_weight = stage_dense_side(root, params, device, precision, model,
                                                                               instruction, test, val)
    query_vectors = {name: encode(model, split.queries, batch, instruction, False, kind="query", precision=precision)
                     for name, split in splits.items()}

    def dense(vectors: np.ndarray) -> tuple[list[list[str]], list[list[float]]]:
        ranked = dense_rankings(model, test.texts, ids, [], FUSION_POOL, passage_vectors=passage_vectors,
                                device=device, windows=windows, window_vectors=window_vectors,
                                window_weight=window_weight, query_vectors=vectors)
        return ranked.ids, ranked.scores

    index = BM25Index(test.texts, params.lexical)
    term_scores = TermScores(index)
    passage_terms = [Counter(t for t in tokens if t in term_scores.vocabulary)
                     for tokens in lexical_tokens_of(test.texts, params.lexical.tokens, "passages")]
    document_frequency = Counter(t for counts in passage_terms for t in counts)
    n = len(passage_terms)
    idf = {t: float(np.log(1 + (n - df + 0.5) / (df + 0.5))) for t, df in document_frequency.items()}
    query_terms = {name: [[t for t in tokens if t in term_scores.vocabulary] for tokens in
                          lexical_tokens_of(split.queries, params.lexical.tokens, "queries")]
                   for name, split in splits.items()}

    def bm25(name: str, feedback=None, k: int = 0, terms: int = 0, weight: float = 0.0):
        ranked, ranked_scores = [], []
        for row, question in enumerate(query_terms[name]):
            chosen = feedback[0][row][:k] if feedback else []
            weights = expanded_query(question, [passage_terms[index_of[p]] for p in chosen],
                                     feedback[1][row][:k] if feedback else [], idf, terms, weight)
            top, scores = term_scores.top(weights, ids, FUSION_POOL)
            ranked.append(top)
            ranked_scores.append(scores)
        return ranked, ranked_scores

    def val_ndcg(ranked: list[list[str]]) -> float:
        return ranking_metrics([r[:10] for r in ranked], val.relevant, [10])["ndcg@10"]

    def hybrid(dense_of: dict, bm25_of: dict) -> tuple[dict, float, list[float]]:
        weights, trials = tune_weights("convex", dense_of["val"][0], bm25_of["val"][0], val.relevant, 60,
                                       dense_of["val"][1], bm25_of["val"][1])
        fused = {name: fuse_all(dense_of[name][0], bm25_of[name][0], weights, 60, FUSION_POOL, "convex",
                                dense_of[name][1], bm25_of[name][1]) for name in dense_of}
        return fused, max(t["val_ndcg@10"] for t in trials), weights

    def uniform(ranked: list[list[str]]) -> tuple[list[list[str]], list[list[float]]]:
        return ranked, [[1.0] * len(r) for r in ranked]     # the hybrid's list: its fused scores are not kept

    plain_dense = {name: dense(query_vectors[name]) for name in splits}
    plain_bm25 = {name: bm25(name) for name in splits}
    plain_hybrid, plain_hybrid_val, plain_weights = hybrid(plain_dense, plain_bm25)
    print(f"[feedback] first round: dense {val_ndcg(plain_dense['val'][0]):.4f}, BM25 "
          f"{val_ndcg(plain_bm25['val'][0]):.4f}, hybrid {plain_hybrid_val:.4f} val NDCG@10", flush=True)

    def rocchio_ranking(source: dict, k: int, beta: float, names=("val", "test")) -> dict:
        return {name: dense(rocchio(query_vectors[name], passage_vectors,
                                    [[index_of[p] for p in row[:k]] for row in source[name][0]], k, beta))
                for name in names}

    def expansion_ranking(source: dict, k: int, terms: int, weight: float, names=("val", "test")) -> dict:
        return {name: bm25(name, source[name], k, terms, weight) for name in names}

    rocchio_grid = [(k, beta) for k in FEEDBACK_DOCS for beta in ROCCHIO_BETAS if beta or k == FEEDBACK_DOCS[0]]
    expansion_grid = [(k, m, lam) for k in FEEDBACK_DOCS for m in EXPANSION_TERMS for lam in EXPANSION_WEIGHTS
                      if lam or (k, m) == (FEEDBACK_DOCS[0], EXPANSION_TERMS[0])]
    hybrid_lists = {name: uniform(plain_hybrid[name]) for name in splits}
    rows: list[dict] = []
    per_query_of: dict[str, list[float]] = {}

    def add_row(name: str, label: str, ranked: list[list[str]], reference: str, setting: dict, val_score: float):
        metrics, per_query_of[name] = headline_and_per_query([r[:10] for r in ranked], test.relevant)
        rows.append({"name": name, "label": label, "reference": reference, "setting": setting,
                     "val_ndcg@10": round(val_score, 6), **metrics})
        print(f"[feedback] {label}: {setting} val {val_score:.4f} → test NDCG@10 {metrics['ndcg@10']:.4f}", flush=True)

    add_row("dense", "dense", plain_dense["test"][0], "", {}, val_ndcg(plain_dense["val"][0]))
    add_row("bm25", "BM25", plain_bm25["test"][0], "", {}, val_ndcg(plain_bm25["val"][0]))
    add_row("hybrid", "hybrid (convex, dense weight from val)", plain_hybrid["test"], "", {"dense_weight":
            plain_weights[0]}, plain_hybrid_val)

    def lever(name: str, label: str, reference: str, grid: list[tuple], val_score, test_ranking) -> None:
        """Two rows: the setting val chooses (perhaps none) and the best with feedback on."""
        scores = [val_score(setting) for setting in grid]
        keys = ("k", "beta") if len(grid[0]) == 2 else ("k", "terms", "weight")
        for feedback_on in (False, True):
            setting, score = choose(grid, scores, feedback_on)
            ranked, extra = test_ranking(setting)
            add_row(name + ("_on" if feedback_on else ""), label + (", feedback on" if feedback_on else ""), ranked,
                    reference, {**dict(zip(keys, setting)), **extra}, score)

    # Dense and BM25 alone, each fed by its own first round; chosen on its own val NDCG@10.
    lever("dense_rocchio", "dense, Rocchio from its own top k", "dense", rocchio_grid,
          lambda s: val_ndcg(rocchio_ranking(plain_dense, *s, ("val",))["val"][0]),
          lambda s: (rocchio_ranking(plain_dense, *s, ("test",))["test"][0], {}))
    lever("bm25_rm3", "BM25, RM3 from its own top k", "bm25", expansion_grid,
          lambda s: val_ndcg(expansion_ranking(plain_bm25, *s, ("val",))["val"][0]),
          lambda s: (expansion_ranking(plain_bm25, *s, ("test",))["test"][0], {}))

    # The hybrid with one side fed by its own first round or by the first round's hybrid, re-fused; each setting
    # chosen on the re-fused hybrid's val NDCG@10 (its dense weight tuned again for each).
    def hybrid_lever(name: str, label: str, grid: list[tuple], make_dense, make_bm25) -> None:
        def test_ranking(setting):
            fused, _, weights = hybrid(make_dense(setting, ("val", "test")), make_bm25(setting, ("val", "test")))
            return fused["test"], {"dense_weight": weights[0]}

        lever(name, label, "hybrid", grid,
              lambda s: hybrid(make_dense(s, ("val",)), make_bm25(s, ("val",)))[1], test_ranking)

    def keep(plain: dict):
        return lambda setting, names: {name: plain[name] for name in names}

    for source_name, source in (("own", None), ("hybrid", hybrid_lists)):
        dense_source, bm25_source = source or plain_dense, source or plain_bm25
        hybrid_lever(f"hybrid_rocchio_{source_name}", f"hybrid, dense side Rocchio from {source_name} top k",
                     rocchio_grid, lambda s, names: rocchio_ranking(dense_source, *s, names), keep(plain_bm25))
        hybrid_lever(f"hybrid_rm3_{source_name}", f"hybrid, BM25 side RM3 from {source_name} top k",
                     expansion_grid, keep(plain_dense), lambda s, names: expansion_ranking(bm25_source, *s, names))

    for row in rows:
        if row["reference"]:
            row["vs_without"] = paired_bootstrap(per_query_of[row["reference"]], per_query_of[row["name"]],
                                                 args.samples, args.seed)
    stem = f"{args.dataset}_feedback"
    record = {"command": " ".join(["python", "bench/feedback.py"] + sys.argv[1:]), "commit": git_commit(),
              "machine": machine(), "device": device, "precision": precision, "date": time.strftime("%Y-%m-%d"),
              "dataset": args.dataset, "variant": args.variant, "model": args.model, "lexical":
              params.lexical.model_dump(), "test_queries": len(test.pairs), "val_queries": len(val.pairs),
              "passages": len(ids), "windows": list(windows) if windows else None, "window_weight": window_weight,
              "grids": {"docs": FEEDBACK_DOCS, "rocchio_beta": ROCCHIO_BETAS, "expansion_terms": EXPANSION_TERMS,
                        "expansion_weight": EXPANSION_WEIGHTS},
              "rows": rows, "seconds": round(time.perf_counter() - started, 1)}
    bm25_ndcg = rows[1]["ndcg@10"]
    lines = ["| retriever | setting chosen on val | val NDCG@10 | NDCG@10 | Recall@10 | MRR@10 | − without feedback "
             "[95% CI] | ÷ BM25 |", "| --- " * 8 + "|"]
    for row in rows:
        setting = ", ".join(f"{key} {value:g}" for key, value in row["setting"].items()) or "–"
        lines.append(f"| {row['label']} | {setting} | {row['val_ndcg@10']:.4f} | {row['ndcg@10']:.4f} | "
                     f"{row['recall@10']:.4f} | {row['mrr@10']:.4f} | {interval(row.get('vs_without'))} | "
                     f"{row['ndcg@10'] / bm25_ndcg:.3f}× |")
    window_text = (f"windows {windows[0]}:{windows[1]} at weight {window_weight:.1f} (val)" if windows
                   else "one vector per passage")
    lines += ["", stored_model_footer(args, test, val, f" ({window_text}; {params.lexical.tokens} BM25, k1 "
                                                      f"{params.lexical.k1:g}); {device}, {precision}", record)]
    write_stored_model_bench(Path(args.out), stem, record, lines, per_query_of, test.pairs)


if __name__ == "__main__":
    main()
