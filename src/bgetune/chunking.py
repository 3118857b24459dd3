"""Sentence-aware chunking that respects Chinese and English punctuation.

Example::

    spans = chunk_spans("第一句。第二句！第三句？", max_chars=6)
    # [(0, 8), (8, 12)] -> "第一句。第二句！", "第三句？"  (sentences are never cut unless longer than max_chars)
"""
from __future__ import annotations

import re
from typing import Callable

_TERMINATORS = "。！？；!?;…"
_CLOSERS = "\"'”’」』）)】"
_SENTENCE = re.compile(
    rf"[^{_TERMINATORS}\n]*?(?:[{_TERMINATORS}]+[{_CLOSERS}]*|\.(?=\s)|\.$|\n+|$)", re.S
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``; whitespace-only pieces are left out, offsets index ``text``."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.span()
        if start == end:
            continue
        piece = text[start:end]
        stripped = piece.strip()
        if not stripped:
            continue
        lead = len(piece) - len(piece.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def chunk_spans(text: str, max_len: int, min_len: int = 0, overlap: int = 0,
                measure: Callable[[str], int] | None = None) -> list[tuple[int, int]]:
    """Group whole sentences into chunks of at most ``max_len``; a longer sentence is cut to fit.

    ``measure`` gives a text's length (default: characters; ``token_measure(tokenizer)`` counts model tokens).
    A chunk shorter than ``min_len`` is joined to the chunk before it, so no text is dropped. ``overlap`` > 0
    starts each chunk with the previous chunk's last whole sentences, up to ``overlap`` in length, so a fact at a
    boundary is whole in at least one chunk.
    """
    measure = measure or len
    pieces: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        while measure(text[start:end]) > max_len:
            cut = _longest_prefix(text, start, end, max_len, measure)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    sizes = [measure(text[s:e]) for s, e in pieces]
    # A paragraph (text between line breaks) that fits in one chunk is not split across two: when it does not fit
    # in what is left of the current chunk, it starts the next one.
    paragraph_end = list(range(len(pieces)))
    for i in range(len(pieces) - 2, -1, -1):
        if "\n" not in text[pieces[i][1]:pieces[i + 1][0]]:
            paragraph_end[i] = paragraph_end[i + 1]
    groups: list[list[int]] = []   # indices into pieces
    for i in range(len(pieces)):
        starts_paragraph = i == 0 or "\n" in text[pieces[i - 1][1]:pieces[i][0]]
        whole = list(range(i, paragraph_end[i] + 1))
        keep_whole = (starts_paragraph and groups
                      and _span_size(text, pieces, groups[-1] + whole, measure, sizes) > max_len
                      and _span_size(text, pieces, whole, measure, sizes) <= max_len)
        if groups and not keep_whole and _span_size(text, pieces, groups[-1] + [i], measure, sizes) <= max_len:
            groups[-1].append(i)
            continue
        start_group = [i]
        if overlap > 0 and groups:
            carried: list[int] = []
            for j in reversed(groups[-1]):
                if j == groups[-1][0] or sum(sizes[k] for k in carried) + sizes[j] > overlap:
                    break
                carried.insert(0, j)
            if carried and _span_size(text, pieces, carried + [i], measure, sizes) <= max_len:
                start_group = carried + [i]
        groups.append(start_group)
    chunks = [(pieces[g[0]][0], pieces[g[-1]][1]) for g in groups]
    merged: list[tuple[int, int]] = []
    for start, end in chunks:
        if merged and measure(text[start:end]) < min_len and start >= merged[-1][0]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def token_measure(tokenizer) -> Callable[[str], int]:
    """Length in the model's tokens (no special tokens), cached per text, for ``chunk_spans(measure=...)``."""
    cache: dict[str, int] = {}

    def measure(text: str) -> int:
        if text not in cache:
            cache[text] = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        return cache[text]

    return measure


def _span_size(text, pieces, group, measure, sizes) -> int:
    if measure is len:
        return pieces[group[-1]][1] - pieces[group[0]][0]
    # Tokens of adjacent sentences add up (a tokenizer does not merge across the sentence boundary we cut at).
    return sum(sizes[k] for k in group)


def _longest_prefix(text: str, start: int, end: int, max_len: int, measure) -> int:
    """The largest cut in (start, end) whose prefix fits in max_len (binary search; at least one character)."""
    lo, hi = start + 1, end
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[start:mid]) <= max_len:
            lo = mid
        else:
            hi = mid - 1
    return lo


def length_report(tokenizer, passages: list[str], queries: list[str], passage_limit: int, query_limit: int,
                  instruction: str = "") -> dict:
    """How many passages and queries are longer than their token limits (and would be cut when encoded).

    ``*_limit`` are content tokens (special tokens excluded); queries are counted with the instruction in front,
    as the model sees them."""
    def counts(texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]]

    passage_tokens = counts(passages)
    query_tokens = counts([instruction + q for q in queries])
    report = {}
    for name, tokens, limit in (("passages", passage_tokens, passage_limit), ("queries", query_tokens, query_limit)):
        over = sum(1 for n in tokens if n > limit)
        report[name] = {"count": len(tokens), "token_limit": limit, "over_limit": over,
                        "over_limit_share": round(over / len(tokens), 4) if tokens else 0.0,
                        "max_tokens": max(tokens, default=0),
                        "mean_tokens": round(sum(tokens) / len(tokens), 1) if tokens else 0.0}
    return report
