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
