"""bench/pooled_gain.py: pairs of per-query files become grouped differences, and the output says the mean."""
from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def pooled_gain(load_bench):
    return load_bench("pooled_gain")


def write(path, scores):
    path.write_text("".join(json.dumps({"qid": q, "ndcg@10": s}) + "\n" for q, s in scores.items()))
    return str(path)


def test_pairs_are_grouped_by_their_questions_and_named_when_they_differ(pooled_gain, tmp_path):
    first = {"q1": 0.5, "q2": 0.0, "q3": 1.0}
    other = {"x1": 0.2, "x2": 0.4}
    pairs = [("a", write(tmp_path / "a0.jsonl", first), write(tmp_path / "a1.jsonl", {**first, "q2": 0.3})),
             ("b", write(tmp_path / "b0.jsonl", other), write(tmp_path / "b1.jsonl", {"x1": 0.1, "x2": 0.4})),
             ("c", write(tmp_path / "c0.jsonl", first), write(tmp_path / "c1.jsonl", {**first, "q1": 0.8}))]
    groups, rows = pooled_gain.pair_differences(pairs)
    assert sorted(g.shape for g in groups) == [(1, 2), (2, 3)]
    assert [r["difference"] for r in rows] == pytest.approx([0.1, -0.05, 0.1])
    bad = [("d", write(tmp_path / "d0.jsonl", first), write(tmp_path / "d1.jsonl", other))]
    with pytest.raises(SystemExit, match="--pair d: .* hold different questions"):
        pooled_gain.pair_differences(bad)


def test_the_command_writes_the_pooled_mean_with_its_interval(pooled_gain, tmp_path, monkeypatch):
    base = {f"q{i}": (i % 7) / 7 for i in range(60)}
    better = {q: s + (0.1 if i % 3 else -0.05) for i, (q, s) in enumerate(base.items())}   # +0.05 on average
    argv = ["pooled_gain.py", "--pair", f"one={write(tmp_path / 'b.jsonl', base)},{write(tmp_path / 'm.jsonl', better)}",
            "--samples", "200", "--out", str(tmp_path / "out")]
    monkeypatch.setattr("sys.argv", argv)
    pooled_gain.main()
    record = json.loads((tmp_path / "out" / "pooled.json").read_text())
    expected = sum(better[q] - base[q] for q in base) / len(base)
    assert record["pooled"]["difference"] == pytest.approx(expected, abs=1e-6)
    assert 0 < record["pooled"]["ci_low"] < expected < record["pooled"]["ci_high"]
    assert "**mean of 1 pairs**" in (tmp_path / "out" / "pooled.md").read_text()
