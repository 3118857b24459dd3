"""Do a stage's inputs belong together? Files written by different runs (a corpus re-split, pairs from before)
would silently train on passages that do not exist; these checks name the files that disagree.

Example::

    check_pairs_in_corpus(pairs, passages, "data/pairs/train.jsonl", "data/corpus.jsonl")
"""
from __future__ import annotations

from pathlib import Path

from bgetune.records import InputError


class LineageError(InputError):
    """Two input files that should come from one run do not."""


def _mismatch(name: Path | str, other: Path | str, count: int, total: int, example: str) -> LineageError:
    return LineageError(f"{name} and {other} do not belong together: {count} of {total} records name passages "
                        f"that are not in {other} (e.g. {example!r}); they come from different runs — re-run the "
                        "stages that write them (dvc repro)")


def check_pairs_in_corpus(pairs, passages, pairs_path, corpus_path) -> None:
    ids = {p.id for p in passages}
    bad = [p for p in pairs if any(i not in ids for i in p.pos_ids) or any(i not in ids for i in p.neg_ids)]
    if bad:
        example = next(i for i in bad[0].pos_ids + bad[0].neg_ids if i not in ids)
        raise _mismatch(pairs_path, corpus_path, len(bad), len(pairs), example)


def check_examples_in_corpus(examples, passages, examples_path, corpus_path) -> None:
    ids = {p.id for p in passages}
    bad = [e for e in examples if e.pos_ids and any(i not in ids for i in e.pos_ids + e.neg_ids)]
    if bad:
        example = next(i for i in bad[0].pos_ids + bad[0].neg_ids if i not in ids)
        raise _mismatch(examples_path, corpus_path, len(bad), len(examples), example)


def check_vocabulary(model, summary: dict | None, folder) -> None:
    """The expanded base must hold the tokens its summary says were added (a base from another corpus would not)."""
    if summary and summary.get("vocab_size_after") and len(model.tokenizer) != summary["vocab_size_after"]:
        raise LineageError(f"{folder}: its vocabulary has {len(model.tokenizer)} tokens but results/vocab.json says "
                           f"{summary['vocab_size_after']}: they come from different runs — re-run the vocab stage")
