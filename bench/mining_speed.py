"""Dense-mining search speed: bgetune's exact faiss search vs sentence-transformers' util.mine_hard_negatives vs a
plain numpy matmul + argpartition bound, on the same random unit vectors (384 dims).

    python bench/mining_speed.py --sizes 10000 100000 1000000 --queries 1000

Writes bench/results/mining_speed.json and .md. mine_hard_negatives gets the same vectors through its own
embedding cache (cache_folder), so only its search and bookkeeping are timed, like ours.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

DIM, RANK_MAX = 384, 100


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def numpy_bound(queries: np.ndarray, passages: np.ndarray, k: int, batch: int = 256) -> np.ndarray:
    out = []
    for start in range(0, len(queries), batch):
        scores = queries[start:start + batch] @ passages.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out)


def ours(queries: np.ndarray, passages: np.ndarray, k: int):
    from bgetune.negatives.dense import dense_candidates

    return dense_candidates(queries, passages, 2, k)


def sentence_transformers_mine(queries: np.ndarray, passages: np.ndarray, k: int, model) -> float:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    query_texts = [f"q{i}" for i in range(len(queries))]
    corpus = [f"p{i}" for i in range(len(passages))]
    dataset = Dataset.from_dict({"query": query_texts, "positive": corpus[: len(queries)]})
    with tempfile.TemporaryDirectory() as cache:
        name = model.model_card_data.base_model or ""
        qh = hashlib.sha256(repr((name, None, None, query_texts)).encode()).hexdigest()
        ch = hashlib.sha256(repr((name, None, None, corpus)).encode()).hexdigest()
        np.save(os.path.join(cache, f"query_embeddings_{qh}.npy"), queries)
        np.save(os.path.join(cache, f"corpus_embeddings_{ch}.npy"), passages)
        start = time.perf_counter()
        mine_hard_negatives(dataset, model, corpus=corpus, range_min=1, range_max=k, num_negatives=7,
                            sampling_strategy="random", use_faiss=True, cache_folder=cache, verbose=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", default="bench/results/mining_speed")
    args = parser.parse_args()
    from bgetune.models import load_model

    model = load_model("bundled:all-MiniLM-L6-v2")   # only its similarity function is used; vectors are cached
    rows = []
    for size in args.sizes:
        passages, queries = unit_vectors(size, 0), unit_vectors(args.queries, 1)
        timings = {}
        start = time.perf_counter(); ours(queries, passages, RANK_MAX); timings["bgetune"] = time.perf_counter() - start
        start = time.perf_counter(); numpy_bound(queries, passages, RANK_MAX); timings["numpy"] = time.perf_counter() - start
        timings["sentence_transformers"] = sentence_transformers_mine(queries, passages, RANK_MAX, model)
        row = {"passages": size, "queries": args.queries,
               **{f"{k}_s": round(v, 3) for k, v in timings.items()},
               **{f"{k}_queries_per_s": round(args.queries / v, 1) for k, v in timings.items()},
               "speedup_vs_sentence_transformers": round(timings["sentence_transformers"] / timings["bgetune"], 2),
               "ratio_to_numpy_bound": round(timings["bgetune"] / timings["numpy"], 2)}
        rows.append(row)
        print(json.dumps(row))
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "dim": DIM, "rank_max": RANK_MAX,
              "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    lines = ["| passages | bgetune q/s | mine_hard_negatives q/s | numpy bound q/s | speed-up vs ST | time / numpy bound |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['passages']:,} | {r['bgetune_queries_per_s']} | {r['sentence_transformers_queries_per_s']} "
                     f"| {r['numpy_queries_per_s']} | {r['speedup_vs_sentence_transformers']}× | "
                     f"{r['ratio_to_numpy_bound']}× |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
