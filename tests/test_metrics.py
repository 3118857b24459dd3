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


def test_tied_scores_rank_by_corpus_position_whatever_order_the_index_returns():
    from bgetune.evaluation.retrieval import order_ties

    # Passages 7 and 2 tie (to 6 decimals) behind passage 5: the tie goes to the earlier passage, 2.
    assert order_ties([7, 5, 2], [0.8000001, 0.9, 0.8]) == [5, 2, 7]
    assert order_ties([2, 5, 7], [0.8, 0.9, 0.8000001]) == [5, 2, 7]
    assert order_ties([3, -1], [0.5, 0.0]) == [3]          # faiss pads short result lists with -1
    ids = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]
    ranking = [ids[i] for i in order_ties([7, 5, 2], [0.8, 0.9, 0.8])]
    # Two positives {p2, p7} tied at ranks 2-3: NDCG counts both, whichever order the tie takes.
    m = ranking_metrics([ranking], [{"p2", "p7"}], [1, 3])
    assert m["recall@1"] == 0.0 and m["recall@3"] == 1.0 and m["mrr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)), abs=1e-6)


def test_recall_curve_hand_computed():
    from bgetune.evaluation.metrics import recall_curve

    assert recall_curve([["a", "b", "c"], ["x", "y", "z"]], [{"b", "c"}, {"x"}], [1, 2, 3]) == [
        (1, 0.5), (2, 0.75), (3, 1.0)]
