"""What the sentence-transformers Trainer feeds our loss: a schedule of batches in which no text appears twice, and
each query's group (its positive and sampled hard negatives) tokenised at the query and passage lengths.

The Trainer supplies the engine (devices, precision, accumulation, torchrun, resume); it lacks three things that
contrastive fine-tuning with mined negatives needs, which live here as its plug-ins:

- ``ScheduleBatchSampler`` (passed as ``batch_sampler``): a seeded shuffle per epoch, greedy batches whose queries
  and positive passages are all distinct *by passage id* (sentence-transformers' NoDuplicatesBatchSampler compares
  texts, and only within one process's batch) and, when the schedule has groups, each from one domain. Under
  torchrun the batch is global: each process gets one slice of it, and no id repeats across the slices, because
  the loss gathers every process's candidates.
- ``GroupCollator`` (passed as ``data_collator``): samples each query's negatives with an RNG seeded by
  (seed, epoch, example) — independent of the batch size and of the process count, so a resumed or re-batched run
  draws the same groups — and writes the ids the loss needs to mask false negatives, as ``label``.
- ``schedule_dataset``: one row per (epoch, example); all epochs are one pass for the Trainer, so its step count
  is exact even though epochs of duplicate-free batches differ in length.

Example::

    dataset = schedule_dataset(examples, epochs=2)
    collator = GroupCollator(preprocess_fn=model.preprocess, examples=examples, group_size=4, seed=42,
                             instruction="为这个句子生成表示以用于检索相关文章：")
    args = SentenceTransformerTrainingArguments(..., batch_sampler=ScheduleBatchSampler)
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

import torch
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from bgetune.records import TrainExample

PAD = -1


def id_hash(passage_id: str) -> int:
    """A stable non-negative 62-bit integer for a passage id (tensors carry ids across processes)."""
    return int.from_bytes(hashlib.blake2b(passage_id.encode("utf-8"), digest_size=8).digest(), "little") >> 2


def example_keys(example: TrainExample) -> list[str]:
    return ["q:" + example.query] + ["p:" + i for i in (example.pos_ids or example.pos)]


def schedule_dataset(examples: list[TrainExample], epochs: int, groups: list[str] | None = None):
    """One row per (epoch, example) in epoch order; ``keys`` are what must not repeat within a batch; ``groups``
    (one per example, e.g. its domain) adds a ``group`` column: each batch is then drawn from one group."""
    from datasets import Dataset

    keys = [example_keys(e) for e in examples]
    rows = {"example": [], "epoch": [], "keys": []}
    if groups is not None:
        rows["group"] = []
    for epoch in range(epochs):
        rows["example"].extend(range(len(examples)))
        rows["epoch"].extend([epoch] * len(examples))
        rows["keys"].extend(keys)
        if groups is not None:
            rows["group"].extend(groups)
    return Dataset.from_dict(rows)


def domain_groups(examples: list[TrainExample], domain_of: dict[str, str | None]) -> list[str]:
    """Each example's batch group for ``train.batch_by: domain``: the domain of its first positive passage ("" for
    a passage without one, or an example without passage ids, such as hand-written stage-2 pairs)."""
    return [(domain_of.get(e.pos_ids[0]) or "") if e.pos_ids else "" for e in examples]


def grouped_batches(keys: list[list[str]], groups: list[str], order: list[int], batch_size: int,
                    rng: random.Random) -> list[list[int]]:
    """Duplicate-free batches that each hold one group's examples (visited in ``order``), in an order shuffled by
    ``rng`` so that groups interleave over the epoch instead of running one after another."""
    by_group: dict[str, list[int]] = {}
    for position in order:
        by_group.setdefault(groups[position], []).append(position)
    batches = [batch for group in sorted(by_group)
               for batch in no_duplicate_batches(keys, by_group[group], batch_size)]
    rng.shuffle(batches)
    return batches


def world_size() -> int:
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def no_duplicate_batches(keys: list[list[str]], order: list[int], batch_size: int) -> list[list[int]]:
    """Greedy batches (positions into ``keys``, visited in ``order``) whose keys are all distinct; what does not
    fit waits for a later batch, so nothing is dropped."""
    remaining = list(order)
    batches = []
    while remaining:
        batch, seen, deferred = [], set(), []
        for position in remaining:
            if len(batch) < batch_size and not (set(keys[position]) & seen):
                batch.append(position)
                seen.update(keys[position])
            else:
                deferred.append(position)
        batches.append(batch)
        remaining = deferred
    return batches


class ScheduleBatchSampler(torch.utils.data.BatchSampler):
    """Duplicate-free global batches for every epoch, each split into one slice per process.

    sentence-transformers calls it as ``ScheduleBatchSampler(dataset, batch_size=..., seed=..., ...)`` with the
    per-device batch size; ``accelerate`` then hands slice r of every global batch to process r. A global batch with
    fewer examples than processes cannot be split and is left out (counted in ``left_out``)."""

    def __init__(self, dataset, batch_size: int, drop_last: bool = False, valid_label_columns=None, generator=None,
                 seed: int = 0):
        self.processes = world_size()
        self.per_device = batch_size
        epochs, keys = dataset["epoch"], dataset["keys"]
        groups = dataset["group"] if "group" in dataset.column_names else None
        by_epoch: dict[int, list[int]] = {}
        for row, epoch in enumerate(epochs):
            by_epoch.setdefault(epoch, []).append(row)
        self.slices: list[list[int]] = []
        self.global_batches = 0
        self.left_out = 0
        for epoch in sorted(by_epoch):
            rows = by_epoch[epoch]
            order = list(range(len(rows)))
            random.Random(f"{seed}:epoch:{epoch}").shuffle(order)
            epoch_keys = [keys[r] for r in rows]
            if groups is None:
                batches = no_duplicate_batches(epoch_keys, order, batch_size * self.processes)
            else:
                batches = grouped_batches(epoch_keys, [groups[r] for r in rows], order, batch_size * self.processes,
                                          random.Random(f"{seed}:epoch:{epoch}:batches"))
            for batch in batches:
                if len(batch) < self.processes:
                    self.left_out += len(batch)
                    continue
                self.global_batches += 1
                for part in _split_evenly(batch, self.processes):
                    self.slices.append([rows[p] for p in part])
        # accelerate yields a process's slice only when the sampler's batch_size is None or every slice is full:
        # slices of a short last batch must still be yielded.
        self.batch_size = None
        self.drop_last = False

    def __iter__(self):
        return iter(self.slices)

    def __len__(self) -> int:
        return len(self.slices)


def _split_evenly(items: list, parts: int) -> list[list]:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for part in range(parts):
        end = start + size + (1 if part < extra else 0)
        out.append(items[start:end])
        start = end
    return out


@dataclass
class Group:
    query: str
    positive: str
    positive_id: str
    positive_ids: list[str]
    negatives: list[str]
    negative_ids: list[str]
    positive_score: float | None = None
    negative_scores: list[float] | None = None


def sample_group(example: TrainExample, group_size: int, rng: random.Random) -> Group:
    """One positive and up to ``group_size - 1`` distinct negatives. A query with fewer negatives keeps what it
    has (the loss takes uneven groups; repeating a negative would only weight it twice) — counted by
    ``groups_short_of_negatives``."""
    ids = example.pos_ids or example.pos
    p = rng.randrange(len(example.pos))
    negative_ids = example.neg_ids or example.neg
    indices = list(range(len(example.neg)))
    chosen = rng.sample(indices, group_size - 1) if len(indices) >= group_size - 1 else indices
    scores = example.neg_scores if example.neg_scores and len(example.neg_scores) == len(example.neg) else None
    pos_scores = example.pos_scores if example.pos_scores and len(example.pos_scores) == len(example.pos) else None
    return Group(query=example.query, positive=example.pos[p], positive_id=ids[p], positive_ids=list(ids),
                 negatives=[example.neg[i] for i in chosen], negative_ids=[negative_ids[i] for i in chosen],
                 positive_score=pos_scores[p] if pos_scores else None,
                 negative_scores=[scores[i] for i in chosen] if scores else None)


def groups_short_of_negatives(examples: list[TrainExample], group_size: int) -> int:
    return sum(1 for e in examples if len(e.neg) < group_size - 1)


@dataclass
class GroupCollator(SentenceTransformerDataCollator):
    """Turns schedule rows into model inputs: ``query_*`` (queries with the instruction, query length),
    ``passage_*`` (every query's positive, then all hard negatives, passage length), ``noise_*`` (unrelated texts,
    when the noise penalty is on) and ``label``, a dict of tensors:

    - ``positive_column`` (B,): the column of each query's positive among the candidates;
    - ``candidate_ids`` (C,) and ``query_positive_ids`` (B, P): passage-id hashes; a candidate that is one of the
      query's positives but not its label column is a false negative, masked by the loss;
    - ``group_columns`` (B, G) and ``teacher_scores`` (B, G): each query's own group (positive first), padded with
      -1 / NaN, for pairwise losses and distillation.
    """

    examples: list = field(default_factory=list)
    group_size: int = 4
    seed: int = 0
    instruction: str = ""
    noise_texts: list = field(default_factory=list)

    def __call__(self, rows: list[dict]) -> dict:
        groups = [sample_group(self.examples[row["example"]], self.group_size,
                               random.Random(f"{self.seed}:{row['epoch']}:{row['example']}")) for row in rows]
        return self.encode_groups(groups, rng=random.Random(f"{self.seed}:noise:{rows[0]['epoch']}:"
                                                            f"{rows[0]['example']}"))

    def encode_groups(self, groups: list[Group], rng: random.Random | None = None) -> dict:
        candidates = [g.positive for g in groups]
        candidate_ids = [g.positive_id for g in groups]
        columns = [[i] for i in range(len(groups))]
        for i, g in enumerate(groups):
            for text, passage_id in zip(g.negatives, g.negative_ids):
                columns[i].append(len(candidates))
                candidates.append(text)
                candidate_ids.append(passage_id)
        width = max(len(c) for c in columns)
        most_positives = max(len(g.positive_ids) for g in groups)
        batch = {}
        for key, value in self.preprocess_fn([g.query for g in groups], prompt=self.instruction or None,
                                             task="query").items():
            batch[f"query_{key}"] = value
        for key, value in self.preprocess_fn(candidates, task="document").items():
            batch[f"passage_{key}"] = value
        if self.noise_texts:
            rng = rng or random.Random(self.seed)
            sample = rng.sample(self.noise_texts, min(len(self.noise_texts), len(groups)))
            for key, value in self.preprocess_fn(sample, task="document").items():
                batch[f"noise_{key}"] = value
        teacher = [[g.positive_score] + list(g.negative_scores or []) if g.positive_score is not None
                   and g.negative_scores is not None else [] for g in groups]
        batch["label"] = {
            "positive_column": torch.arange(len(groups)),
            "candidate_ids": torch.tensor([id_hash(i) for i in candidate_ids], dtype=torch.long),
            "query_positive_ids": torch.tensor([[id_hash(i) for i in g.positive_ids]
                                               + [PAD] * (most_positives - len(g.positive_ids)) for g in groups],
                                              dtype=torch.long),
            "group_columns": torch.tensor([c + [PAD] * (width - len(c)) for c in columns], dtype=torch.long),
            "teacher_scores": torch.tensor([t + [float("nan")] * (width - len(t)) if len(t) == len(c)
                                            else [float("nan")] * width for t, c in zip(teacher, columns)],
                                           dtype=torch.float32),
        }
        return batch
