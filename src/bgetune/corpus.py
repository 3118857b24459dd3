"""From documents to passages: chunk every section, assign whole documents to splits, map questions to passages.

Example::

    result = build_corpus(documents, params.chunk, params.split, seed=42)
    result.passages[0]     # Passage(id="guide.md#0", doc_id="guide.md", text=..., split="train", ...)
    result.pairs[0]        # Pair(qid=..., query=..., pos_ids=[...], source="existing", split="test")
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from bgetune.chunking import chunk_spans
from bgetune.ingest import Document
from bgetune.records import Pair, Passage

SPLITS = ("train", "val", "test")


@dataclass
class CorpusResult:
    passages: list[Passage]
    pairs: list[Pair]
    assignment: dict[str, str]
    report: dict = field(default_factory=dict)


def assign_splits(doc_ids: list[str], ratios: dict[str, float], seed: int) -> dict[str, str]:
    """Assign whole documents to splits by seeded shuffle; a split with a positive ratio gets at least one document
    when there are at least as many documents as such splits."""
    ordered = sorted(doc_ids)
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    wanted = [s for s in SPLITS if ratios[s] > 0]
    counts = {s: int(round(ratios[s] * n)) for s in SPLITS}
    if n >= len(wanted):
        for s in wanted:
            counts[s] = max(counts[s], 1)
    # Give the rounding difference to (or take it from) the largest split.
    largest = max(SPLITS, key=lambda s: ratios[s])
    counts[largest] += n - sum(counts.values())
    assignment, start = {}, 0
    for s in SPLITS:
        for doc_id in ordered[start:start + counts[s]]:
            assignment[doc_id] = s
        start += counts[s]
    return assignment


def build_corpus(documents: list[Document], chunk_params, split_params, seed: int) -> CorpusResult:
    ratios = {s: getattr(split_params, s) for s in SPLITS}
    assignment = assign_splits([d.doc_id for d in documents], ratios, seed)
    passages: list[Passage] = []
    pairs: list[Pair] = []
    unmapped = Counter()
    for document in documents:
        split = assignment[document.doc_id]
        counter = 0
        for section in document.sections:
            spans = chunk_spans(section.text, chunk_params.max_chars, chunk_params.min_chars)
            ids = []
            for start, end in spans:
                pid = f"{document.doc_id}#{counter}"
                counter += 1
                ids.append(pid)
                passages.append(Passage(id=pid, doc_id=document.doc_id, text=section.text[start:end], split=split,
                                        title=section.title or document.title, domain=document.domain))
            for qa in section.qas:
                pos_ids = _answer_passages(qa, section.text, spans, ids)
                if not pos_ids:
                    unmapped["question_in_empty_section"] += 1
                    continue
                if qa.answer_start is not None and len(pos_ids) == len(ids) > 1:
                    unmapped["answer_offset_outside_text"] += 1
                pairs.append(Pair(qid=qa.qid, query=qa.question, pos_ids=pos_ids, source="existing", split=split))
    report = {
        "passages": len(passages),
        "passages_per_split": dict(Counter(p.split for p in passages)),
        "documents_per_split": dict(Counter(assignment.values())),
        "existing_pairs_per_split": dict(Counter(p.split for p in pairs)),
        "mean_passage_chars": round(sum(len(p.text) for p in passages) / max(len(passages), 1), 1),
        "questions_not_mapped_by_answer": dict(unmapped),
    }
    return CorpusResult(passages=passages, pairs=pairs, assignment=assignment, report=report)


def _answer_passages(qa, text: str, spans: list[tuple[int, int]], ids: list[str]) -> list[str]:
    """The passage holding the answer (by offset, else by answer text), else every passage of the section."""
    if qa.answer_start is not None:
        hits = [pid for (s, e), pid in zip(spans, ids) if s <= qa.answer_start < e]
        if hits:
            return hits
    if qa.answer_text:
        hits = [pid for (s, e), pid in zip(spans, ids) if qa.answer_text in text[s:e]]
        if hits:
            return hits
    return list(ids)
