"""bench/query_fusion.py: the features read the two rankings as documented, each bucket gets the weight its own val
questions rank best with, and test questions are scored at their bucket's weight."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from query_fusion import bucket_weights, per_query_at, query_features  # noqa: E402

GRID = (0.0, 0.5, 1.0)


def test_features_of_two_rankings():
    f = query_features(["a", "b", "c"], [0.9, 0.6, 0.3], ["c", "a", "x"], [10.0, 4.0, 1.0])
    assert f["bm25_gap"] == pytest.approx(0.6) and f["dense_top"] == 0.9 and f["dense_gap"] == pytest.approx(0.3)
    assert f["agreement"] == 2.0                                   # a and c in both top 10s
    assert f["dense_z"] == pytest.approx((0.9 - 0.6) / np.std([0.9, 0.6, 0.3]))
    assert f["bm25_z"] == pytest.approx((10.0 - 5.0) / np.std([10.0, 4.0, 1.0]))
    # One BM25 hit (or none) has no gap and no spread: 0, not a division by zero.
    one = query_features(["a"], [0.5], ["a"], [3.0])
    assert one["bm25_gap"] == one["bm25_z"] == one["dense_gap"] == one["dense_z"] == 0.0


def test_each_bucket_takes_the_weight_its_own_questions_rank_best_with():
    feature = np.array([0.1, 0.2, 0.8, 0.9])
    # low-feature questions rank best with BM25 (weight 0), high ones with the dense side (weight 1)
    ndcg = np.array([[1.0, 0.5, 0.0], [1.0, 0.5, 0.0], [0.0, 0.5, 1.0], [0.0, 0.2, 1.0]])
    edges, weights = bucket_weights(feature, ndcg, GRID, 2)
    assert edges == [pytest.approx(0.5)] and weights == [0.0, 1.0]
    # test questions: each at its bucket's weight (column 0 below the edge, column 2 above)
    test_ndcg = np.array([[0.7, 0.1, 0.2], [0.3, 0.1, 0.9]])
    assert list(per_query_at(np.array([0.3, 0.6]), test_ndcg, GRID, edges, weights)) == [0.7, 0.9]


def test_ties_take_the_smaller_dense_weight_and_one_bucket_is_the_single_weight():
    ndcg = np.array([[0.5, 0.5, 0.5], [0.2, 0.6, 0.6]])
    _, weights = bucket_weights(np.array([1.0, 2.0]), ndcg, GRID, 2)
    assert weights == [0.0, 0.5]
    edges, weights = bucket_weights(np.array([1.0, 2.0]), ndcg, GRID, 1)
    assert edges == [] and weights == [0.5]                         # the stage's rule over all questions
