"""The test set every retriever is scored on: all passages of the corpus, the test pairs, the BM25 ranking (the
baseline and the hybrid's lexical half), document ids for document-level scores, and the leakage check.

Example::

    test = load_test_set(root, params.eval, k=100, lexical=params.lexical)
    test.queries[0], test.relevant[0], test.bm25[0][:3]
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from bgetune.records import InputError, read_pairs, read_passages

log = logging.getLogger("bgetune")


@dataclass
class TestSet:
    passages: list
    pairs: list
    bm25: list[list[str]]
    bm25_scores: list[list[float]]
    leakage: dict = field(default_factory=dict)

    def __post_init__(self):
        self.texts = [p.text for p in self.passages]
        self.ids = [p.id for p in self.passages]
        self.queries = [p.query for p in self.pairs]
        self.relevant = [set(p.pos_ids) for p in self.pairs]
        self.index_of = {pid: i for i, pid in enumerate(self.ids)}
        self.doc_of = {p.id: p.doc_id for p in self.passages}
        self.relevant_documents = [{self.doc_of[i] for i in rel if i in self.doc_of} for rel in self.relevant]


def load_test_set(root: Path, eval_params, k: int, split: str = "test", *, lexical,
                  term_weights: dict[str, float] | None = None) -> TestSet:
    """``split``'s pairs over the whole corpus, with BM25 (``lexical``: params.lexical; ``term_weights``: the query
    terms' learned weights, bgetune.evaluation.term_weights) ranking each query's top k."""
    from bgetune.evaluation.leakage import LeakageError, describe, find_leaks
    from bgetune.evaluation.retrieval import bm25_rankings
    from bgetune.lineage import check_pairs_in_corpus

    passages = read_passages(root / "data/corpus.jsonl")
    path = root / "data/pairs" / f"{split}.jsonl"
    pairs = [p for p in read_pairs(path) if p.pos_ids]
    if not pairs:
        raise InputError(f"{path}: no {split} pairs to evaluate (check the split ratios and qa_gen sources)")
    check_pairs_in_corpus(pairs, passages, path, root / "data/corpus.jsonl")
    leakage = {}
    if split == "test":
        leaks = find_leaks(read_pairs(root / "data/pairs/train.jsonl"), pairs, passages)
        if leaks["leaked_queries"] or leaks["leaked_passages"]:
            if eval_params.leakage == "error":
                raise LeakageError(f"{root / 'data/pairs'}: " + describe(leaks))
            log.warning(describe(leaks))
        leakage = {"leaked_test_queries": leaks["leaked_queries"], "leaked_test_passages": leaks["leaked_passages"]}
    ids, scores = bm25_rankings([p.text for p in passages], [p.id for p in passages], [p.query for p in pairs], k,
                                with_scores=True, lexical=lexical, term_weights=term_weights)
    return TestSet(passages, pairs, ids, scores, leakage)


def val_pool(root: Path, passages, max_passages: int, seed: int, why: str):
    """The val pairs, and the passages to rank for them: their positives plus a seeded sample of the rest."""
    val_pairs = [p for p in read_pairs(root / "data/pairs/val.jsonl") if p.pos_ids]
    if not val_pairs:
        raise InputError(f"{root / 'data/pairs/val.jsonl'}: {why} needs val pairs (split.val > 0)")
    needed = {i for p in val_pairs for i in p.pos_ids}
    others = [p for p in passages if p.id not in needed]
    room = max(max_passages - len(needed), 0)
    sample = random.Random(seed).sample(others, min(room, len(others)))
    return val_pairs, [p for p in passages if p.id in needed] + sample
