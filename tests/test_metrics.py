import math

import pytest

from bgetune.evaluation.metrics import first_relevant_rank, ranking_metrics


def test_single_relevant_hand_computed():
    m = ranking_metrics([["a", "b", "c"]], [{"b"}], [1, 5])
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0
    assert m["mrr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(3), abs=1e-6)
    assert m["map@10"] == 0.5


def test_several_relevant_and_averaging_over_queries():
    # Query 1: relevant {a, c} at ranks 1 and 3. Query 2: relevant {z} not retrieved.
    m = ranking_metrics([["a", "b", "c"], ["x", "y"]], [{"a", "c"}, {"z"}], [1, 10])
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((dcg / idcg + 0) / 2, abs=1e-6)
    assert m["recall@1"] == pytest.approx((0.5 + 0) / 2)
    assert m["recall@10"] == pytest.approx((1.0 + 0) / 2)
    assert m["mrr@10"] == pytest.approx(0.5)
    assert m["map@10"] == pytest.approx(((1 / 1 + 2 / 3) / 2) / 2, abs=1e-6)


def test_cutoff_and_ties_are_by_list_order():
    ranking = ["n"] * 10 + ["a"]
    m = ranking_metrics([ranking], [{"a"}], [10, 100])
    assert m["recall@10"] == 0.0 and m["recall@100"] == 1.0 and m["mrr@10"] == 0.0
    assert first_relevant_rank(ranking, {"a"}) == 11
    assert first_relevant_rank(["x"], {"a"}) is None


def test_errors():
    with pytest.raises(ValueError, match="no queries"):
        ranking_metrics([], [], [10])
    with pytest.raises(ValueError, match="without relevant"):
        ranking_metrics([["a"]], [set()], [10])
