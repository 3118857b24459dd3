"""bench/rerank.py: its training groups are the rerank stage's (bgetune.training.reranker), sampled down to
--train-questions with the left-out count reported, and its settings are a valid rerank params section."""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from rerank import bench_settings, sampled_groups  # noqa: E402


def test_sampled_groups_are_the_stages_groups_cut_to_the_asked_number(tmp_path, capsys):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"], "neg": [f"n{i}_{j}" for j in range(3 if i != 4 else 1)]}
            for i in range(10)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    groups = sampled_groups(train, 5, 2, seed=42)
    assert "1 of 10 groups have fewer than 2 negatives" in capsys.readouterr().out
    assert len(groups) == 5 and all(set(g) == {"query", "positive", "negative_1", "negative_2"} for g in groups)
    assert all(g["positive"] == "p" + g["query"][1:] and g["negative_2"] == f"n{g['query'][1:]}_1" for g in groups)
    everything = sampled_groups(train, 0, 2, seed=42)
    assert len(everything) == 9 and "q4" not in {g["query"] for g in everything}
    assert groups == everything[:5] == sampled_groups(train, 5, 2, seed=42)   # the same seed, the same sample
    assert [g["query"] for g in groups] != [g["query"] for g in sampled_groups(train, 5, 2, seed=7)]


def test_bench_settings_carry_the_arguments_into_the_params_section():
    args = argparse.Namespace(hard_negatives=2, random_negatives=0, batch_size=8, epochs=0.5, lr=2e-5,
                              max_length=128, predict_batch=32, top_k=30)
    settings = bench_settings(args)
    assert (settings.hard_negatives, settings.random_negatives, settings.batch_size, settings.epochs, settings.lr,
            settings.max_length, settings.predict_batch_size, settings.top_k) == (2, 0, 8, 0.5, 2e-5, 128, 32, 30)
    assert settings.checkpoint_every == 0     # a bench run keeps no checkpoints
