import random

import pytest

from bgetune.evaluation.metrics import query_ndcg, ranking_metrics
from bgetune.evaluation.significance import paired_bootstrap


def test_per_query_ndcg_averages_to_the_reported_metric():
    rng = random.Random(0)
    ids = [f"p{i}" for i in range(30)]
    rankings, relevant = [], []
    for _ in range(50):
        ranking = rng.sample(ids, 20)
        rankings.append(ranking)
        relevant.append(set(rng.sample(ids, rng.randint(1, 3))))
    per_query = [query_ndcg(r, rel) for r, rel in zip(rankings, relevant)]
    assert sum(per_query) / 50 == pytest.approx(ranking_metrics(rankings, relevant, [10])["ndcg@10"], abs=1e-6)
    assert query_ndcg(["a", "b"], {"b"}) == pytest.approx(1 / 1.5849625, abs=1e-6)


def test_identical_models_tie_and_a_clear_gain_is_significant():
    rng = random.Random(1)
    a = [rng.random() for _ in range(400)]
    tie = paired_bootstrap(a, a, samples=500, seed=0)
    assert tie["difference"] == 0 and tie["ci_low"] == 0 and tie["ci_high"] == 0 and tie["p_b_not_better"] == 1.0
    better = [x + 0.05 + rng.gauss(0, 0.1) for x in a]
    gain = paired_bootstrap(a, better, samples=500, seed=0)
    assert 0.03 < gain["ci_low"] < gain["difference"] < gain["ci_high"] < 0.07
    assert gain["p_b_not_better"] == 0.0
    assert paired_bootstrap(a, better, samples=500, seed=0) == gain   # seeded


def test_noise_gives_an_interval_around_zero():
    rng = random.Random(2)
    a = [rng.random() for _ in range(300)]
    b = [rng.random() for _ in range(300)]
    result = paired_bootstrap(a, b, samples=1000, seed=3)
    assert result["ci_low"] < 0 < result["ci_high"] and 0.05 < result["p_b_not_better"] < 0.95


def test_unpaired_scores_are_an_error():
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="no queries"):
        paired_bootstrap([], [])


def per_query_writer(metrics_dir):
    """write(name, rows): a per-query file in metrics_dir/per_query, as the evaluate stage writes it."""
    import json

    folder = metrics_dir / "per_query"
    folder.mkdir(exist_ok=True)

    def write(name, rows):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return write


def test_per_query_files_are_compared_on_the_same_queries(tmp_path):
    from bgetune.evaluation.significance import compare_per_query, per_query_scores
    from bgetune.records import InputError

    write = per_query_writer(tmp_path)
    write("base", [{"qid": f"q{i}", "ndcg@10": 0.2, "pos_ids": ["p"]} for i in range(50)])
    write("finetuned", [{"qid": f"q{i}", "ndcg@10": 0.6, "pos_ids": ["p"]} for i in range(50)])
    # An older file without per-query NDCG: recovered from the rank of the single positive.
    write("bm25", [{"qid": f"q{i}", "rank": 1 if i % 2 else None, "pos_ids": ["p"]} for i in range(50)])
    rows = {(r["model"], r["reference"]): r for r in compare_per_query(tmp_path, seed=1)}
    assert set(rows) == {("finetuned", "base"), ("finetuned", "bm25")}     # merged is absent: skipped
    assert rows[("finetuned", "base")]["difference"] == pytest.approx(0.4)
    assert rows[("finetuned", "bm25")]["mean_a"] == pytest.approx(0.5)
    write("merged", [{"qid": "other", "ndcg@10": 0.1, "pos_ids": ["p"]}])
    with pytest.raises(ValueError, match="different queries"):
        compare_per_query(tmp_path)
    write("bad", [{"qid": "q1", "rank": 3, "pos_ids": ["a", "b"]}])
    with pytest.raises(InputError, match="bad.jsonl: line 1"):
        per_query_scores(tmp_path / "per_query" / "bad.jsonl")


def test_a_model_s_hybrid_is_compared_with_bm25_when_it_was_fused(tmp_path):
    from bgetune.evaluation.significance import compare_per_query

    write = per_query_writer(tmp_path)
    write("bm25", [{"qid": f"q{i}", "ndcg@10": 0.5, "pos_ids": ["p"]} for i in range(20)])
    write("finetuned", [{"qid": f"q{i}", "ndcg@10": 0.3, "pos_ids": ["p"]} for i in range(20)])
    rows = {(r["model"], r["reference"]) for r in compare_per_query(tmp_path, seed=1)}
    assert rows == {("finetuned", "bm25")}                   # no hybrid fused: no hybrid row
    write("finetuned", [{"qid": f"q{i}", "ndcg@10": 0.3, "hybrid_rank": 1, "hybrid_ndcg@10": 0.8,
                         "pos_ids": ["p"]} for i in range(20)])
    rows = {(r["model"], r["reference"]): r for r in compare_per_query(tmp_path, seed=1)}
    assert rows[("finetuned_hybrid", "bm25")]["difference"] == pytest.approx(0.3)   # 0.8 − 0.5
    assert rows[("finetuned", "bm25")]["difference"] == pytest.approx(-0.2)


def test_a_hybrid_can_be_compared_with_the_reference_s_own_hybrid(tmp_path):
    from bgetune.evaluation.significance import compare_files

    write = per_query_writer(tmp_path)
    write("a", [{"qid": f"q{i}", "ndcg@10": 0.2, "hybrid_ndcg@10": 0.5, "pos_ids": ["p"]} for i in range(20)])
    write("b", [{"qid": f"q{i}", "ndcg@10": 0.1, "hybrid_ndcg@10": 0.6, "pos_ids": ["p"]} for i in range(20)])
    folder = tmp_path / "per_query"
    hybrid_vs_dense = compare_files(folder / "a.jsonl", folder / "b.jsonl", "hybrid_ndcg@10")
    hybrid_vs_hybrid = compare_files(folder / "a.jsonl", folder / "b.jsonl", "hybrid_ndcg@10",
                                     reference_key="hybrid_ndcg@10")
    assert hybrid_vs_dense["difference"] == pytest.approx(0.4)     # 0.6 − the reference's dense 0.2
    assert hybrid_vs_hybrid["difference"] == pytest.approx(0.1)    # 0.6 − the reference's hybrid 0.5


def test_a_pooled_gain_of_one_pair_is_that_pair_s_paired_bootstrap():
    import numpy as np

    from bgetune.evaluation.significance import pooled_bootstrap

    rng = random.Random(3)
    a = [rng.random() for _ in range(300)]
    b = [x + rng.gauss(0.02, 0.1) for x in a]
    single = paired_bootstrap(a, b, samples=500, seed=9)
    pooled = pooled_bootstrap([np.array([[y - x for x, y in zip(a, b)]])], samples=500, seed=9)
    assert pooled["difference"] == pytest.approx(single["difference"], abs=1e-6)
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx((single["ci_low"], single["ci_high"]), abs=1e-6)
    assert pooled["comparisons"] == 1 and pooled["ahead"] == 1


def test_pairs_on_the_same_questions_are_resampled_together_and_weigh_the_same():
    import numpy as np

    from bgetune.evaluation.significance import pooled_bootstrap

    rng = np.random.default_rng(0)
    d = rng.normal(0.01, 0.2, size=400)
    one = pooled_bootstrap([d[None, :]], samples=1000, seed=1)
    # the same pair twice on the same questions is no new evidence: the interval does not narrow ...
    twice_shared = pooled_bootstrap([np.stack([d, d])], samples=1000, seed=1)
    assert (twice_shared["ci_low"], twice_shared["ci_high"]) == pytest.approx((one["ci_low"], one["ci_high"]))
    # ... while two query sets of the same size are: it narrows by about √2
    twice_apart = pooled_bootstrap([d[None, :], rng.permutation(d)[None, :]], samples=1000, seed=1)
    width = lambda r: r["ci_high"] - r["ci_low"]   # noqa: E731
    assert width(twice_apart) == pytest.approx(width(one) / 2 ** 0.5, rel=0.15)
    # each pair weighs the same, whatever the size of its query set
    mixed = pooled_bootstrap([np.full((1, 10), 0.1), np.full((2, 1000), -0.05)], samples=200, seed=1)
    assert mixed["difference"] == pytest.approx((0.1 - 0.05 - 0.05) / 3)
    assert mixed["ahead"] == 1 and mixed["queries"] == [10, 1000]
    with pytest.raises(ValueError, match="non-empty"):
        pooled_bootstrap([np.zeros((0, 5))])
