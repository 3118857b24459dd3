"""The batch schedule (duplicate-free by id, sliced per process) and the group collator (lengths, ids, labels)."""
import random

import pytest

from bgetune.records import TrainExample
from bgetune.training.data import (GroupCollator, ScheduleBatchSampler, domain_groups, id_hash, no_duplicate_batches,
                                   sample_group, schedule_dataset)


def examples_with_repeats(n=12):
    return [TrainExample(query=f"q{i % 5}", pos=[f"p{i % 3}"], pos_ids=[f"p{i % 3}"], neg=[]) for i in range(n)]


def test_schedule_covers_every_example_once_per_epoch_without_repeats_in_a_batch():
    examples = examples_with_repeats()
    dataset = schedule_dataset(examples, epochs=2)
    sampler = ScheduleBatchSampler(dataset, batch_size=4, seed=0)
    per_epoch = {0: [], 1: []}
    for batch in sampler:
        rows = [dataset[i] for i in batch]
        assert len({r["epoch"] for r in rows}) == 1, "a batch never mixes epochs"
        keys = [k for r in rows for k in r["keys"]]
        assert len(keys) == len(set(keys)), f"duplicate query or passage id in {rows}"
        per_epoch[rows[0]["epoch"]] += [r["example"] for r in rows]
    assert sorted(per_epoch[0]) == sorted(per_epoch[1]) == list(range(12))
    assert ScheduleBatchSampler(dataset, batch_size=4, seed=0).slices == sampler.slices
    assert ScheduleBatchSampler(dataset, batch_size=4, seed=1).slices != sampler.slices
    assert sampler.batch_size is None   # accelerate must yield short slices too


def test_two_processes_get_slices_of_the_same_global_batches(monkeypatch):
    examples = [TrainExample(query=f"q{i}", pos=[f"p{i}"], pos_ids=[f"p{i}"], neg=[]) for i in range(10)]
    dataset = schedule_dataset(examples, epochs=1)
    whole = ScheduleBatchSampler(dataset, batch_size=4, seed=3).slices
    monkeypatch.setenv("WORLD_SIZE", "2")
    halves = ScheduleBatchSampler(dataset, batch_size=2, seed=3)
    # accelerate hands slice 2k to process 0 and 2k+1 to process 1: together they are the one-process batch k.
    assert [a + b for a, b in zip(halves.slices[::2], halves.slices[1::2])] == whole
    assert len(halves) % 2 == 0 and halves.left_out == 0


def test_grouped_schedule_draws_each_batch_from_one_domain_and_interleaves_them(monkeypatch):
    # 30 examples in three domains of 14, 10 and 6; two share a positive passage (kept apart as before).
    domains = ["liver"] * 14 + ["heart"] * 10 + ["lung"] * 6
    examples = [TrainExample(query=f"q{i}", pos=[f"p{i}"], pos_ids=[f"p{i}" if i != 1 else "p0"], neg=[])
                for i in range(30)]
    domain_of = {f"p{i}": d for i, d in enumerate(domains)}
    groups = domain_groups(examples, domain_of)
    assert groups == domains
    dataset = schedule_dataset(examples, epochs=2, groups=groups)
    sampler = ScheduleBatchSampler(dataset, batch_size=4, seed=0)
    per_epoch, order = {0: [], 1: []}, []
    for batch in sampler:
        rows = [dataset[i] for i in batch]
        assert len({r["group"] for r in rows}) == 1 and len({r["epoch"] for r in rows}) == 1
        keys = [k for r in rows for k in r["keys"]]
        assert len(keys) == len(set(keys))
        per_epoch[rows[0]["epoch"]] += [r["example"] for r in rows]
        order.append(rows[0]["group"])
    assert sorted(per_epoch[0]) == sorted(per_epoch[1]) == list(range(30))   # nothing dropped
    # 4 + 3 + 2 batches per epoch (liver's 14 make 4, its last of 2; the shared positive waits for a later one)
    assert sorted(order[:len(order) // 2]) == ["heart"] * 3 + ["liver"] * 4 + ["lung"] * 2
    changes = sum(a != b for a, b in zip(order, order[1:]))
    assert changes >= 4, f"domains run one after another: {order}"   # shuffled, not in blocks of one domain
    assert ScheduleBatchSampler(dataset, batch_size=4, seed=0).slices == sampler.slices
    monkeypatch.setenv("WORLD_SIZE", "2")    # two processes: each global batch (of 8) is still one domain
    for a, b in zip(*[iter(ScheduleBatchSampler(dataset, batch_size=4, seed=0).slices)] * 2):
        assert len({dataset[i]["group"] for i in a + b}) == 1


def test_an_example_without_a_domain_or_passage_ids_is_in_the_unnamed_group():
    examples = [TrainExample(query="a", pos=["x"], pos_ids=["p1"], neg=[]),
                TrainExample(query="b", pos=["y"], pos_ids=["p2"], neg=[]), TrainExample(query="c", pos=["z"], neg=[])]
    assert domain_groups(examples, {"p1": "liver", "p2": None}) == ["liver", "", ""]


def test_greedy_batches_defer_rather_than_drop():
    keys = [["a"], ["a"], ["b"], ["c"]]
    assert no_duplicate_batches(keys, [0, 1, 2, 3], batch_size=3) == [[0, 2, 3], [1]]


def test_groups_never_repeat_negatives_and_keep_their_scores():
    example = TrainExample(query="q", pos=["p"], pos_ids=["p"], neg=["a", "b"], neg_ids=["a", "b"],
                           pos_scores=[0.9], neg_scores=[0.5, 0.4])
    short = sample_group(example, 5, random.Random(0))
    assert sorted(short.negative_ids) == ["a", "b"]            # 2 of the 4 asked for, none twice
    assert dict(zip(short.negative_ids, short.negative_scores)) == {"a": 0.5, "b": 0.4}
    assert short.positive_score == 0.9
    assert sample_group(TrainExample(query="q", pos=["p"], pos_ids=["p"], neg=[]), 4, random.Random(0)).negatives == []


def test_collator_uses_the_query_and_passage_lengths_and_writes_ids(tiny_model):
    from bgetune.models import set_lengths

    set_lengths(tiny_model, query_max_length=8, passage_max_length=40)
    long_text = " ".join(["cat"] * 30)
    examples = [TrainExample(query=long_text, pos=[long_text], pos_ids=["x"], neg=["dog"], neg_ids=["y"]),
                TrainExample(query="fish", pos=["fish fish"], pos_ids=["z"], neg=[], neg_ids=[])]
    collator = GroupCollator(preprocess_fn=tiny_model.preprocess, examples=examples, group_size=2, seed=0)
    batch = collator([{"example": 0, "epoch": 0}, {"example": 1, "epoch": 0}])
    assert batch["query_input_ids"].shape[1] == 8                 # cut at the query length
    assert batch["passage_input_ids"].shape[1] == 32               # 30 words + [CLS] + [SEP]: not cut at 8
    label = batch["label"]
    assert label["positive_column"].tolist() == [0, 1]
    assert label["candidate_ids"].tolist() == [id_hash("x"), id_hash("z"), id_hash("y")]
    assert label["group_columns"].tolist() == [[0, 2], [1, -1]]    # uneven groups, padded


def test_collator_draws_the_same_group_whatever_the_batch(tiny_model):
    examples = [TrainExample(query=f"q{i}", pos=["p"], pos_ids=[f"p{i}"], neg=[f"n{j}" for j in range(6)],
                             neg_ids=[f"n{i}{j}" for j in range(6)]) for i in range(3)]
    collator = GroupCollator(preprocess_fn=tiny_model.preprocess, examples=examples, group_size=3, seed=7)
    alone = collator([{"example": 2, "epoch": 1}])["label"]["candidate_ids"].tolist()
    together = collator([{"example": 0, "epoch": 1}, {"example": 2, "epoch": 1}])["label"]["candidate_ids"].tolist()
    assert alone[1:] == together[-2:]                              # example 2's negatives: same draw
    other_epoch = collator([{"example": 2, "epoch": 0}])["label"]["candidate_ids"].tolist()
    assert other_epoch != alone


@pytest.mark.parametrize("text", ["", "   "])
def test_id_hash_is_stable_and_non_negative(text):
    assert id_hash("d1#0") == id_hash("d1#0") and id_hash(text) >= 0 and id_hash("a") != id_hash("b")
