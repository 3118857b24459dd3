"""Batches in which no text appears twice, and the group (query, positive, negatives) sampled for each example.

A duplicate would make a query's own positive appear as another query's in-batch negative; so would a hard
negative of one query that is the positive of another. Batching by passage ids prevents the first; the loss masks
the second by ids.

Example::

    batches = no_duplicate_batches(examples, batch_size=16, seed=42, epoch=0)
    group = sample_group(examples[0], group_size=4, rng=random.Random(0))
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from bgetune.records import TrainExample


@dataclass
class Group:
    query: str
    positive: str
    positive_id: str
    positive_ids: set[str]
    negatives: list[str]
    negative_ids: list[str]


def example_keys(example: TrainExample) -> set[str]:
    return {"q:" + example.query} | {"p:" + i for i in (example.pos_ids or example.pos)}


def no_duplicate_batches(examples: list[TrainExample], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Seeded shuffle, then greedy batches whose queries and positives are all distinct; the last partial batch is
    kept (dropping it would silently lose training examples)."""
    order = list(range(len(examples)))
    random.Random(f"{seed}:epoch:{epoch}").shuffle(order)
    keys = [example_keys(examples[i]) for i in order]
    remaining = list(range(len(order)))
    batches = []
    while remaining:
        batch, seen, deferred = [], set(), []
        for position in remaining:
            if len(batch) < batch_size and not (keys[position] & seen):
                batch.append(order[position])
                seen |= keys[position]
            else:
                deferred.append(position)
        batches.append(batch)
        remaining = deferred
    return batches


def sample_group(example: TrainExample, group_size: int, rng: random.Random) -> Group:
    """One positive and up to ``group_size - 1`` negatives (sampled with replacement only when too few exist,
    as FlagEmbedding does; a query without negatives trains on in-batch negatives alone)."""
    ids = example.pos_ids or example.pos
    p = rng.randrange(len(example.pos))
    wanted = group_size - 1
    negative_ids = example.neg_ids or example.neg
    indices = list(range(len(example.neg)))
    if len(indices) >= wanted:
        chosen = rng.sample(indices, wanted)
    elif indices:
        chosen = indices + [rng.choice(indices) for _ in range(wanted - len(indices))]
    else:
        chosen = []
    return Group(query=example.query, positive=example.pos[p], positive_id=ids[p], positive_ids=set(ids),
                 negatives=[example.neg[i] for i in chosen], negative_ids=[negative_ids[i] for i in chosen])
