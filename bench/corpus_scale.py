"""How split's near-duplicate search and keyword mining scale with the corpus: bgetune's code against the all-pairs
versions it replaced, side by side on the same passages, as ratios (and a check that both find the same answer).

    python bench/corpus_scale.py --docs 5000 10000 20000 --queries 10000

A folder of N Markdown documents is written under --workdir, each of 2–4 sections of sentences drawn (seeded) from
the shared data's CMRC 2018 contexts and meddialog answers, one in ten a reworded copy of an earlier one; the split
step chunks it (exact duplicates merged) and its passages are what both searches see, at split's default
near-duplicate threshold 0.9. Keyword mining gets --queries of those passages' first sentences as queries.
Writes bench/results/corpus_scale.json and .md. Data is read from $BGETUNE_SHARED_DATA (default ../shared/data).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BGETUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_sentences() -> list[str]:
    sentences = []
    for name in ("cmrc2018_dev.json", "cmrc2018_trial.json"):
        for article in json.loads((SHARED / "cmrc2018" / name).read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                sentences += [s + "。" for s in paragraph["context"].split("。") if len(s) > 8]
    with open(SHARED / "meddialog" / "meddialog_internal_medicine.gb18030.csv", encoding="gb18030") as handle:
        for row in csv.DictReader(handle):
            sentences += [s + "。" for s in re.split("[。！？]", row["answer"]) if len(s) > 8]
    return sentences


def write_folder(raw: Path, documents: int, sentences: list[str], seed: int = 0) -> None:
    """``documents`` Markdown files; one in ten is an earlier one republished with one sentence reworded (the
    near-duplicates a real folder holds: versions of a page)."""
    rng = random.Random(seed)
    written: list[list[str]] = []
    for i in range(documents):
        folder = raw / f"d{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if written and rng.random() < 0.1:
            lines = list(rng.choice(written))
            section = rng.randrange(2, len(lines), 2)
            lines[section] = lines[section].replace("。", "，", 1) + rng.choice(sentences)
        else:
            lines = [f"# {rng.choice(sentences)[:12]}{i}"]
            for _ in range(rng.randint(2, 4)):
                lines += [f"\n## {rng.choice(sentences)[:10]}\n",
                          "".join(rng.choice(sentences) for _ in range(rng.randint(4, 10)))]
            written.append(lines)
        (folder / f"doc{i}.md").write_text("\n".join(lines), encoding="utf-8")


def split_folder(root: Path, documents: int, sentences: list[str], dedup: str) -> list[str]:
    """A fresh folder of ``documents`` under ``root``, split by bgetune's split step; the passages' texts."""
    from bgetune.params import params_from_dict
    from bgetune.steps import split

    shutil.rmtree(root, ignore_errors=True)
    write_folder(root / "data" / "raw", documents, sentences)
    params = params_from_dict({"data": {"raw_dir": "data/raw"}, "chunk": {"dedup": dedup},
                               "model": {"base": "bundled:all-MiniLM-L6-v2"}})
    split.run(params, root, progress=False)
    return [json.loads(line)["text"] for line in (root / "data" / "corpus.jsonl").open(encoding="utf-8")]


def first_sentences(texts: list[str], count: int, seed: int = 1) -> list[str]:
    """Queries: the first sentence (up to 40 characters) of ``count`` passages drawn at random."""
    rng = random.Random(seed)
    return [rng.choice(re.split("[。！？]", t)[:1] or [t])[:40] for t in rng.sample(texts, min(len(texts), count))]


def all_pairs_reference(texts: list[str], threshold: float, ngram: int = 2, block: int = 2000) -> list[tuple]:
    """bgetune's near-duplicate search before the prefix filter (up to 0ac5229): every text against every other."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    matrix = normalize(CountVectorizer(analyzer="char", ngram_range=(ngram, ngram), binary=True,
                                       lowercase=False).fit_transform(texts).astype(np.float32))
    transposed = matrix.T.tocsr()
    block = max(64, min(block, 20_000_000 // max(matrix.shape[0], 1)))
    pairs = []
    for start in range(0, matrix.shape[0], block):
        sims = (matrix[start:start + block] @ transposed).tocoo()
        keep = (sims.data >= threshold - 1e-6) & (sims.row + start < sims.col)
        pairs.extend(zip((sims.row[keep] + start).tolist(), sims.col[keep].tolist()))
    return pairs


def keyword_reference(passage_texts, queries, top_keywords=10, method="tfidf", max_candidates=100):
    """bgetune's keyword mining before the sparse product (up to 0ac5229): a Python loop over each keyword's
    passages."""
    from bgetune.negatives.keyword import extract_keywords

    inverted = defaultdict(list)
    for index, text in enumerate(passage_texts):
        for word in set(extract_keywords(text, top_keywords * 2, method)):
            inverted[word].append(index)
    out = []
    for query in queries:
        words = set(extract_keywords(query, top_keywords, method))
        overlap = defaultdict(int)
        for word in words:
            for index in inverted.get(word, ()):
                overlap[index] += 1
        ranked = sorted(overlap.items(), key=lambda item: (-item[1], item[0]))[:max_candidates]
        out.append([(i, n / len(words), r) for r, (i, n) in enumerate(ranked, start=1)])
    return out


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--workdir", default="/tmp/bgetune-corpus-scale")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    from provenance import provenance, write_results

    from bgetune.dedup import normalise, similar_pairs
    from bgetune.negatives.keyword import keyword_candidates

    from bgetune.negatives.keyword import extract_keywords

    # imports and jieba's dictionary load once, outside the timings
    extract_keywords("预热", 1)
    for search in (similar_pairs, all_pairs_reference):
        search(["预热一下", "预热一次"], 0.9)
    for mine in (keyword_candidates, keyword_reference):
        mine(["预热一下"], ["预热"])
    sentences = shared_sentences()
    rows = []
    for documents in args.docs:
        root = Path(args.workdir) / f"docs_{documents}"
        # exact duplicates merged only, so that the passages both searches see still hold the near-duplicates
        (texts, split_s) = timed(split_folder, root, documents, sentences, dedup="exact")
        keys = [normalise(t) for t in texts]
        ours, ours_s = timed(similar_pairs, keys, 0.9)
        reference, reference_s = timed(all_pairs_reference, keys, 0.9)
        queries = first_sentences(texts, args.queries)
        kw_ours, kw_ours_s = timed(keyword_candidates, texts, queries)
        kw_reference, kw_reference_s = timed(keyword_reference, texts, queries)
        row = {"documents": documents, "passages": len(texts), "queries": len(queries), "split_step_s": split_s,
               "near_pairs": len(ours), "near_same_pairs": sorted(ours) == sorted(reference),
               "near_ours_s": ours_s, "near_all_pairs_s": reference_s,
               "near_speedup": round(reference_s / max(ours_s, 1e-9), 2),
               "keyword_same_candidates": kw_ours == kw_reference,
               "keyword_ours_s": kw_ours_s, "keyword_loop_s": kw_reference_s,
               "keyword_speedup": round(kw_reference_s / max(kw_ours_s, 1e-9), 2)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        shutil.rmtree(root, ignore_errors=True)
    record = provenance("corpus_scale.py")
    record["rows"] = rows
    table = ["| documents | passages | near-duplicate pairs (same in both) | all pairs s | prefix filter s | × | "
             "keyword queries | keyword loop s | sparse product s | × (same candidates) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        table.append(f"| {r['documents']:,} | {r['passages']:,} | {r['near_pairs']:,} ({r['near_same_pairs']}) | "
                     f"{r['near_all_pairs_s']} | {r['near_ours_s']} | {r['near_speedup']} | {r['queries']:,} | "
                     f"{r['keyword_loop_s']} | {r['keyword_ours_s']} | {r['keyword_speedup']} "
                     f"({r['keyword_same_candidates']}) |")
    write_results(Path(args.out), "corpus_scale", record, table)

if __name__ == "__main__":
    main()
