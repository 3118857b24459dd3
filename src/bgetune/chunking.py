"""Sentence-aware chunking that respects Chinese and English punctuation.

Example::

    spans = chunk_spans("第一句。第二句！第三句？", max_chars=6)
    # [(0, 8), (8, 12)] -> "第一句。第二句！", "第三句？"  (sentences are never cut unless longer than max_chars)
"""
from __future__ import annotations

import re

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


def chunk_spans(text: str, max_chars: int, min_chars: int = 0) -> list[tuple[int, int]]:
    """Group whole sentences into chunks of at most ``max_chars``; a longer sentence is cut at ``max_chars``.

    A chunk shorter than ``min_chars`` is joined to the chunk before it, so no text is dropped.
    """
    pieces: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        while end - start > max_chars:
            pieces.append((start, start + max_chars))
            start += max_chars
        pieces.append((start, end))
    chunks: list[tuple[int, int]] = []
    for start, end in pieces:
        if chunks and end - chunks[-1][0] <= max_chars:
            chunks[-1] = (chunks[-1][0], end)
        else:
            chunks.append((start, end))
    merged: list[tuple[int, int]] = []
    for start, end in chunks:
        if merged and end - start < min_chars:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged
