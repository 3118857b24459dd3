"""bench/rerank.py: the blend orders candidates by the weighted normalised scores (w = 0 keeps the hybrid's order,
w = 1 is the reranker's), training groups are a seeded sample that reports what it leaves out, and the reranker's
start is the bi-encoder's transformer alone (no sentence-transformers modules that would turn it into a pooler)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from rerank import blend, normalised, reranker_from_bi_encoder, training_groups  # noqa: E402


def test_normalised_is_min_max_and_equal_scores_all_count_as_best():
    assert normalised([2.0, 4.0, 3.0]) == [0.0, 1.0, 0.5]
    assert normalised([7.0, 7.0]) == [1.0, 1.0]


def test_blend_weights_the_two_normalised_scores():
    candidates, hybrid, reranker = ["a", "b", "c"], [0.9, 0.5, 0.1], [-1.0, 3.0, 1.0]
    assert blend(candidates, hybrid, reranker, 0.0) == ["a", "b", "c"]          # the hybrid's order
    assert blend(candidates, hybrid, reranker, 1.0) == ["b", "c", "a"]          # the reranker's
    # w 0.3: a 0.7·1 + 0.3·0 = 0.7; b 0.7·0.5 + 0.3·1 = 0.65; c 0 + 0.3·0.5 = 0.15
    assert blend(candidates, hybrid, reranker, 0.3) == ["a", "b", "c"]
    # w 0.5: a 0.5, b 0.75, c 0.25
    assert blend(candidates, hybrid, reranker, 0.5) == ["b", "a", "c"]
    # a reranker with no opinion (all equal) leaves the hybrid's order at any weight
    assert blend(candidates, hybrid, [2.0, 2.0, 2.0], 0.9) == ["a", "b", "c"]


def test_training_groups_are_a_seeded_sample_and_short_groups_are_reported(tmp_path, capsys):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"n{i}_{j}" for j in range(3 if i != 4 else 1)]}
            for i in range(10)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    groups = training_groups(train, 5, 2, seed=42)
    assert "1 of 10 groups have fewer than 2 negatives" in capsys.readouterr().out
    assert len(groups) == 5 and all(set(g) == {"query", "positive", "negative_1", "negative_2"} for g in groups)
    assert all(g["positive"] == "p" + g["query"][1:] and g["negative_2"] == f"n{g['query'][1:]}_1" for g in groups)
    assert "q4" not in {g["query"] for g in training_groups(train, 0, 2, seed=42)}
    assert groups == training_groups(train, 5, 2, seed=42)                         # the same seed, the same sample
    assert [g["query"] for g in groups] != [g["query"] for g in training_groups(train, 5, 2, seed=7)]


def test_reranker_start_holds_the_transformer_only(tmp_path):
    model_dir = tmp_path / "finetuned"
    (model_dir / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json"):
        (model_dir / name).write_text(name)
    init = reranker_from_bi_encoder(model_dir, tmp_path / "init")
    assert sorted(p.name for p in init.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json",
                                                      "tokenizer_config.json"]
    assert (init / "config.json").read_text() == "config.json"
    # a second call (a rerun) keeps what is there
    assert reranker_from_bi_encoder(model_dir, tmp_path / "init") == init


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_blend_of_one_candidate(weight):
    assert blend(["a"], [0.3], [5.0], weight) == ["a"]
