"""jieba's text work in one process against over worker processes (bgetune.parallel), side by side on the same
passages, as ratios, with a check that both give the same result.

    python bench/text_workers.py --docs 10000 20000 --queries 10000

A folder of N synthetic Markdown documents (bench/corpus_scale.py's, from the shared data's CMRC 2018 contexts and
meddialog answers) is split; then each place bgetune segments a whole corpus runs twice, with BGETUNE_CPU_WORKERS=1
and with --workers (default: every core this process may use): mining's BM25 over jieba words (index and
--queries queries), TF-IDF and keyword candidates, vocab's domain terms and qa-gen's key-sentence queries.
Writes bench/results/text_workers.json and .md. Data is read from $BGETUNE_SHARED_DATA (default ../shared/data).
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


class WordTokenizer:
    """A tokenizer that holds no multi-character word, so vocab's term search scores every jieba word (as it
    does with an English base)."""
    unk_token_id = 0

    def convert_tokens_to_ids(self, token):
        return 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [1] * len(text)}


def call_sites(texts: list[str], queries: list[str]) -> dict:
    from bgetune.lexical import BM25Index
    from bgetune.negatives.keyword import keyword_candidates
    from bgetune.negatives.tfidf import tfidf_candidates
    from bgetune.params import params_from_dict
    from bgetune.params.modelling import LexicalParams
    from bgetune.querygen.heuristic import heuristic_pairs
    from bgetune.records import Passage
    from bgetune.vocab import domain_terms

    qa_gen = params_from_dict({"model": {"base": "bundled:all-MiniLM-L6-v2"}}).qa_gen
    passages = [Passage(id=str(i), doc_id=str(i), text=t, split="train") for i, t in enumerate(texts)]
    return {
        "bm25_words": lambda: BM25Index(texts, LexicalParams(tokens="words", k1=1.5)).search(queries, 100),
        "tfidf_words": lambda: tfidf_candidates(texts, queries, 2, 100),
        "keyword": lambda: keyword_candidates(texts, queries),
        "vocab_terms": lambda: domain_terms(WordTokenizer(), texts, top_n=500),
        "key_sentences": lambda: heuristic_pairs(passages, [], qa_gen, seed=42),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, nargs="+", default=[10000, 20000])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=0, help="0: every core this process may use")
    parser.add_argument("--workdir", default="/tmp/bgetune-text-workers")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()

    from corpus_scale import first_sentences, shared_sentences, split_folder
    from provenance import provenance, write_results


    os.environ["BGETUNE_CPU_WORKERS"] = "1"
    for work in call_sites(["预热一下。再热一下。"] * 3, ["预热"]).values():
        work()   # imports and jieba's dictionary load once, outside the timings
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = args.workers or cores
    sentences = shared_sentences()
    rows = []
    for documents in args.docs:
        root = Path(args.workdir) / f"docs_{documents}"
        texts = split_folder(root, documents, sentences, dedup="exact")   # split's default
        queries = first_sentences(texts, args.queries)
        row = {"documents": documents, "passages": len(texts), "characters": sum(map(len, texts)),
               "queries": len(queries), "workers": workers, "sites": {}}
        for name, work in call_sites(texts, queries).items():
            timings, results = {}, {}
            for count in (1, workers):
                os.environ["BGETUNE_CPU_WORKERS"] = str(count)
                start = time.perf_counter()
                results[count] = work()
                timings[count] = round(time.perf_counter() - start, 2)
            row["sites"][name] = {"one_process_s": timings[1], "workers_s": timings[workers],
                                  "speedup": round(timings[1] / max(timings[workers], 1e-9), 2),
                                  "same_result": results[1] == results[workers]}
            print(documents, name, row["sites"][name], flush=True)
        row["one_process_s"] = round(sum(s["one_process_s"] for s in row["sites"].values()), 1)
        row["workers_s"] = round(sum(s["workers_s"] for s in row["sites"].values()), 1)
        rows.append(row)
        shutil.rmtree(root, ignore_errors=True)
    os.environ.pop("BGETUNE_CPU_WORKERS", None)

    record = provenance("text_workers.py")
    record["rows"] = rows
    sites = list(rows[0]["sites"]) if rows else []
    table = ["| documents | passages | characters | workers | " + " | ".join(
        f"{s}: 1 process s / workers s (×)" for s in sites) + " | all: 1 process s / workers s (×) | same results |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in sites) + " | --- | --- |"]
    for r in rows:
        cells = [f"{r['sites'][s]['one_process_s']} / {r['sites'][s]['workers_s']} ({r['sites'][s]['speedup']}×)"
                 for s in sites]
        same = all(r["sites"][s]["same_result"] for s in sites)
        table.append(f"| {r['documents']:,} | {r['passages']:,} | {r['characters']:,} | {r['workers']} | "
                     + " | ".join(cells) + f" | {r['one_process_s']} / {r['workers_s']} "
                     f"({r['one_process_s'] / max(r['workers_s'], 1e-9):.2f}×) | {same} |")
    write_results(Path(args.out), "text_workers", record, table)

if __name__ == "__main__":
    main()
