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
    return assign_groups({d: [d] for d in doc_ids}, ratios, seed)


def assign_groups(groups: dict[str, list[str]], ratios: dict[str, float], seed: int) -> dict[str, str]:
    """Assign groups of documents (all of a group to one split) by seeded shuffle, sized in documents."""
    ordered = sorted(groups)
    random.Random(seed).shuffle(ordered)
    n = sum(len(groups[g]) for g in ordered)
    wanted = [s for s in SPLITS if ratios[s] > 0]
    counts = {s: int(round(ratios[s] * n)) for s in SPLITS}
    if n >= len(wanted):
        for s in wanted:
            counts[s] = max(counts[s], 1)
    # Give the rounding difference to (or take it from) the largest split.
    largest = max(SPLITS, key=lambda s: ratios[s])
    counts[largest] += n - sum(counts.values())
    boundaries, total = [], 0
    for s in SPLITS:
        total += counts[s]
        boundaries.append((total, s))
    assignment, placed = {}, 0
    for key in ordered:
        # A group goes where its first document would have gone in a document-by-document split.
        split = next((s for bound, s in boundaries if placed < bound), SPLITS[-1])
        for doc_id in groups[key]:
            assignment[doc_id] = split
        placed += len(groups[key])
    return assignment


def build_corpus(documents: list[Document], chunk_params, split_params, seed: int, measure=None,
                 progress: bool = False) -> CorpusResult:
    """Chunk, merge duplicate passages, group documents that must share a split, assign splits, map questions.

    ``measure`` counts a text's length in model tokens when ``chunk_params.unit == "tokens"``.
    """
    from bgetune.dedup import UnionFind, duplicate_groups, normalise, similar_pairs

    by_tokens = chunk_params.unit == "tokens"
    if by_tokens and measure is None:
        raise ValueError("chunk.unit: tokens needs the model tokenizer's measure")
    max_len = chunk_params.max_tokens if by_tokens else chunk_params.max_chars
    min_len = chunk_params.min_tokens if by_tokens else chunk_params.min_chars

    # 1. Chunk every section.
    candidates: list[Passage] = []
    sections = []   # (document, section, spans, passage ids)
    for document in documents:
        counter = 0
        for section in document.sections:
            spans = chunk_spans(section.text, max_len, min_len, chunk_params.overlap, measure if by_tokens else None)
            ids = []
            for start, end in spans:
                pid = f"{document.doc_id}#{counter}"
                counter += 1
                ids.append(pid)
                candidates.append(Passage(id=pid, doc_id=document.doc_id, text=section.text[start:end], split="",
                                          title=section.title or document.title, domain=document.domain))
            sections.append((document, section, spans, ids))

    # 2. Merge duplicate passages into their first occurrence.
    texts = [p.text for p in candidates]
    if chunk_params.dedup == "off":
        roots = list(range(len(candidates)))
    else:
        near = chunk_params.near_threshold if chunk_params.dedup == "near" else None
        roots = duplicate_groups(texts, near, progress=progress)
    alias = {p.id: candidates[r].id for p, r in zip(candidates, roots)}
    keys = [normalise(t) for t in texts]
    exact_unique = len({k for k in keys if k}) + sum(1 for k in keys if not k)
    kept = [p for p, r in zip(candidates, roots) if candidates[r].id == p.id]
    dedup_report = {"mode": chunk_params.dedup, "passages_before": len(candidates), "passages_after": len(kept),
                    "merged_exact": len(candidates) - exact_unique if chunk_params.dedup != "off" else 0,
                    "merged_near": (exact_unique - len(kept)) if chunk_params.dedup == "near" else 0}

    # 3. Documents that must share a split: a merged passage's documents, a question's positive documents and,
    #    when asked, documents whose questions are near-identical (so no test question has a twin in training).
    doc_index = {d.doc_id: i for i, d in enumerate(documents)}
    union = UnionFind(len(documents))

    def join(a: str, b: str) -> None:
        union.union(doc_index[a], doc_index[b])

    doc_of = {p.id: p.doc_id for p in candidates}
    for p in candidates:
        join(p.doc_id, doc_of[alias[p.id]])
    questions = []   # (document id, question text)
    for document, section, _, _ in sections:
        for qa in section.qas:
            if not qa.alternative:   # alternative wordings do not move documents (below: twins are dropped)
                questions.append((document.doc_id, qa.question))
            for other in qa.extra_pos_docs:
                if other in doc_index:
                    join(document.doc_id, other)
    # The same question (normalised) in two documents would be a test query that training has seen: always join.
    first_with_question: dict[str, str] = {}
    for doc_id, question in questions:
        key = normalise(question)
        if key:
            join(first_with_question.setdefault(key, doc_id), doc_id)
    similar_questions = 0
    if split_params.group_by == "query_similarity" and len(questions) > 1:
        for a, b in similar_pairs([normalise(q) for _, q in questions], split_params.query_similarity,
                                  progress=progress):
            similar_questions += 1
            join(questions[a][0], questions[b][0])
    members: dict[int, list[str]] = {}
    for i, document in enumerate(documents):
        members.setdefault(union.find(i), []).append(document.doc_id)
    groups = {min(ids): ids for ids in members.values()}   # a group is named by its smallest document id
    ratios = {s: getattr(split_params, s) for s in SPLITS}
    assignment = assign_groups(groups, ratios, seed)

    # 4. Passages and pairs.
    passages = []
    for p in kept:
        p.split = assignment[p.doc_id]
        passages.append(p)
    # The title goes in after chunking and merging: a chunk's size is its own text's, and a passage repeated under
    # two titles is still one passage (under its first).
    titled = sum(add_title(p) for p in passages) if chunk_params.title_prefix else 0
    doc_passages: dict[str, list[str]] = {}
    for p in passages:
        doc_passages.setdefault(p.doc_id, []).append(p.id)
    pairs: list[Pair] = []
    unmapped = Counter()
    for document, section, spans, ids in sections:
        split = assignment[document.doc_id]
        for qa in section.qas:
            pos_ids = _answer_passages(qa, section.text, spans, ids)
            if not pos_ids:
                unmapped["question_in_empty_section"] += 1
                continue
            if qa.answer_start is not None and len(pos_ids) == len(ids) > 1:
                unmapped["answer_offset_outside_text"] += 1
            for other in qa.extra_pos_docs:
                pos_ids = pos_ids + doc_passages.get(other, [])
            pos_ids = list(dict.fromkeys(alias.get(pid, pid) for pid in pos_ids))
            neg_ids = [n for d in qa.neg_docs for n in doc_passages.get(d, [])]
            neg_ids = [n for n in dict.fromkeys(alias.get(n, n) for n in neg_ids) if n not in pos_ids]
            pairs.append(Pair(qid=qa.qid, query=qa.question, pos_ids=pos_ids, split=split, neg_ids=neg_ids,
                              source="existing_alt" if qa.alternative else "existing"))
    pairs, twins = _drop_alternative_twins(pairs, split_params, progress)
    sizes = sorted((len(g) for g in groups.values()), reverse=True)
    report = {
        "passages": len(passages),
        "passages_per_split": dict(Counter(p.split for p in passages)),
        "documents_per_split": dict(Counter(assignment.values())),
        "existing_pairs_per_split": dict(Counter(p.split for p in pairs if p.source == "existing")),
        **({"alt_query_pairs_per_split": dict(Counter(p.split for p in pairs if p.source == "existing_alt"))}
           if any(p.source == "existing_alt" for p in pairs) else {}),
        "mean_passage_length": round(sum((measure if by_tokens else len)(p.text) for p in passages)
                                     / max(len(passages), 1), 1),
        "length_unit": chunk_params.unit,
        **({"title_prefixed": titled, "title_prefix_not_needed": len(passages) - titled}
           if chunk_params.title_prefix else {}),
        "duplicates": dedup_report,
        "split_groups": {"group_by": split_params.group_by, "groups": len(groups),
                         "largest_group_documents": sizes[0] if sizes else 0,
                         "similar_question_pairs": similar_questions},
        "questions_not_mapped_by_answer": dict(unmapped),
    }
    if any(p.source == "existing_alt" for p in pairs) or twins:
        report["alt_queries_dropped_as_twins"] = twins
    return CorpusResult(passages=passages, pairs=pairs, assignment=assignment, report=report)


def add_title(passage: Passage) -> bool:
    """Start the passage with its title on a line of its own (``chunk.title_prefix``); False when it has no title
    or already starts with it (a section that repeats its heading)."""
    title = (passage.title or "").strip()
    if not title or passage.text.startswith(title):
        return False
    passage.text = f"{title}\n{passage.text}"
    return True


def _drop_alternative_twins(pairs: list[Pair], split_params, progress: bool) -> tuple[list[Pair], int]:
    """Alternative wordings (data.qa_columns.alt_queries) minus those that twin a question of another split.

    Splits are decided by the main questions alone, so adding alternatives leaves the split (and the test set) as it
    was; instead, an alternative equal to a question of another split (normalised; with group_by: query_similarity,
    at least that similar) is dropped and counted: a training pair never repeats a test query.
    """
    from bgetune.dedup import normalise, similar_pairs

    alternatives = [i for i, p in enumerate(pairs) if p.source == "existing_alt"]
    if not alternatives:
        return pairs, 0
    keys = [normalise(p.query) for p in pairs]
    twins: set[int] = set()
    splits_of: dict[str, set[str]] = {}
    for p, key in zip(pairs, keys):
        splits_of.setdefault(key, set()).add(p.split)
    twins.update(i for i in alternatives if len(splits_of[keys[i]]) > 1)
    if split_params.group_by == "query_similarity":
        alternative = set(alternatives)
        for a, b in similar_pairs(keys, split_params.query_similarity, progress=progress):
            if pairs[a].split != pairs[b].split:
                twins.update(i for i in (a, b) if i in alternative)
    return [p for i, p in enumerate(pairs) if i not in twins], len(twins)


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
