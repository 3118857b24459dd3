"""bench/feedback.py: Rocchio moves a query toward its feedback passages, the RM3-style expansion adds the feedback's
distinctive terms at its weight, the sparse term scores equal BM25's, and val ties choose no feedback."""
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from feedback import TermScores, choose, expanded_query, rocchio  # noqa: E402

from bgetune.lexical import BM25Index  # noqa: E402
from bgetune.params import LexicalParams  # noqa: E402


def test_rocchio_moves_the_query_toward_the_mean_of_its_first_k_feedback_passages():
    passages = np.eye(3, dtype=np.float32)
    queries = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    moved = rocchio(queries, passages, [[1, 2, 0]], k=2, beta=1.0)
    expected = np.array([1.0, 0.5, 0.5]) / np.linalg.norm([1.0, 0.5, 0.5])
    np.testing.assert_allclose(moved[0], expected, rtol=1e-6)
    np.testing.assert_allclose(rocchio(queries, passages, [[1, 2, 0]], k=2, beta=0.0), queries)


def test_expansion_keeps_the_question_at_one_minus_the_weight_and_adds_the_distinctive_feedback_terms():
    idf = {"肝": 2.0, "炎": 2.0, "的": 0.01, "痛": 1.0}
    feedback = [Counter({"肝": 1, "炎": 1, "的": 4}), Counter({"肝": 2, "的": 2})]
    weights = expanded_query(["痛", "痛", "肝"], feedback, [3.0, 1.0], idf, terms=2, weight=0.4)
    assert set(weights) == {"痛", "肝", "炎"}                  # 的 is common (low idf): not among the best two
    assert abs(sum(weights.values()) - 1.0) < 1e-9
    question_part = {"痛": 0.6 * 2 / 3, "肝": 0.6 / 3}
    assert abs(weights["痛"] - question_part["痛"]) < 1e-9
    assert weights["肝"] > question_part["肝"] and weights["炎"] > 0
    # P(d|q) in proportion to the scores (3:1): 炎, only in the first passage, gets 0.4 × 0.25 / 0.75 of the
    # expansion (weighed alike, the passages would give it 0.4 × 0.2).
    assert abs(weights["炎"] - 0.4 / 3) < 1e-9
    assert expanded_query(["痛"], feedback, [1.0, 1.0], idf, 2, 0.0) == {"痛": 1.0}
    assert expanded_query([], feedback, [1.0, 1.0], idf, 2, 0.4) == {}


def test_term_scores_rank_as_bm25_for_an_unweighted_query():
    texts = ["高血压患者的饮食", "糖尿病的治疗", "高血压吃什么药", "感冒发烧怎么办"]
    index = BM25Index(texts, LexicalParams())
    ids = [f"p{i}" for i in range(len(texts))]
    scores = TermScores(index)
    terms = [t for t in index.tokens("高血压 饮食") if t in scores.vocabulary]
    ranked, ranked_scores = scores.top(dict(Counter(terms)), ids, 4)
    expected = index.retriever.get_scores(terms)
    assert ranked[0] == "p0" and ranked[1] == "p2"
    np.testing.assert_allclose(ranked_scores, sorted(expected, reverse=True), rtol=1e-5)
    assert scores.top({}, ids, 2) == (["p0", "p1"], [0.0, 0.0])


def test_choose_prefers_the_best_val_score_then_no_feedback_then_the_earlier_setting():
    grid = [(1, 0.0), (3, 0.5), (5, 0.5), (3, 1.0)]
    assert choose(grid, [0.30, 0.31, 0.31, 0.31]) == ((3, 0.5), 0.31)
    assert choose(grid, [0.2, 0.2, 0.2, 0.2]) == ((1, 0.0), 0.2)
    # Feedback on: the best of the settings with a weight, even where none is better.
    assert choose(grid, [0.30, 0.25, 0.27, 0.26], feedback_on=True) == ((5, 0.5), 0.27)
