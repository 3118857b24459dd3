"""bgetune.reranking: the blend orders a question's top k by the weighted normalised scores (w 0 keeps the hybrid's
order, w 1 is the reranker's), the rest of the ranking follows unchanged, val picks the weight (ties: the smaller),
and scores come back grouped per question."""
import numpy as np
import pytest

from bgetune.reranking import WEIGHTS, blend, normalised, reranked, score_candidates, tune_weight


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
    assert blend(["a"], [0.3], [5.0], 0.7) == ["a"] and blend([], [], [], 0.5) == []


def test_reranked_reorders_the_top_k_and_keeps_the_rest_in_the_hybrids_order():
    tops = [(["a", "b", "c"], [0.9, 0.5, 0.1])]
    full = [["a", "b", "c", "d", "e"]]
    assert reranked(tops, [[0.0, 1.0, 0.5]], 1.0, full) == [["b", "c", "a", "d", "e"]]
    assert reranked(tops, [[0.0, 1.0, 0.5]], 1.0) == [["b", "c", "a"]]


def test_val_chooses_the_weight_and_ties_go_to_the_smaller():
    # Two questions whose relevant passage the hybrid ranks third of three; the reranker ranks it first.
    tops = [(["a", "b", "c"], [0.9, 0.5, 0.1]), (["d", "e", "f"], [3.0, 2.0, 1.0])]
    relevant = [{"c"}, {"f"}]
    oracle = [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    weight, trials = tune_weight(tops, oracle, relevant)
    # c wins once w · 1 > (1 − w) · 1 (a's hybrid 1 against c's 0): w ≥ 0.6 ranks it first; 0.6 is the smallest.
    assert weight == 0.6 and [t["weight"] for t in trials] == list(WEIGHTS)
    assert trials[-1]["val_ndcg@10"] == pytest.approx(1.0) and trials[0]["val_ndcg@10"] == pytest.approx(0.5)
    # A reranker that agrees with the hybrid ties at every weight: the hybrid alone (0) is kept.
    assert tune_weight(tops, [[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]], relevant)[0] == 0.0


class FakeCrossEncoder:
    """Scores a pair by the passage text's length; records what it was asked."""
    device = "cpu"

    def __init__(self):
        self.pairs = []

    def predict(self, pairs, batch_size, show_progress_bar, convert_to_numpy):
        self.pairs += pairs
        return np.array([float(len(passage)) for _, passage in pairs])


def test_scores_come_back_per_question_in_candidate_order():
    texts = {"a": "x", "b": "xxx", "c": "xx"}
    model = FakeCrossEncoder()
    scores = score_candidates(model, ["q1", "q2"], [["a", "b"], ["c"]], texts.__getitem__, progress=False)
    assert scores == [[1.0, 3.0], [2.0]]
    assert model.pairs == [("q1", "x"), ("q1", "xxx"), ("q2", "xx")]
    assert score_candidates(model, ["q"], [[]], texts.__getitem__, progress=False) == [[]]
