import numpy as np

from bgetune.negatives.dense import dense_candidates
from bgetune.negatives.guard import NegativeGuard
from bgetune.negatives.mixer import MiningQuery, mix_negatives, quota_plan


def test_quota_plan_splits_hard_by_weight_and_keeps_random_share():
    assert quota_plan(10, 0.7, {"dense": 1.0}) == {"dense": 7, "random": 3}
    assert quota_plan(7, 0.7, {"dense": 1.0}) == {"dense": 5, "random": 2}
    assert quota_plan(10, 1.0, {"dense": 2.0, "bm25": 1.0, "off": 0.0}) == {"dense": 7, "bm25": 3, "random": 0}
    assert quota_plan(4, 0.5, {}) == {"random": 4}
    # params.yaml lists every strategy, the unused at 0 (so `dvc exp run -S` can set one): the same plan, same order
    listed = {"dense": 0.5, "bm25": 0.5, "tfidf": 0.0, "keyword": 0.0, "cross_domain": 0.0, "length": 0.0}
    assert list(quota_plan(7, 0.7, listed).items()) == list(quota_plan(7, 0.7, {"dense": 0.5, "bm25": 0.5}).items())


def test_dense_candidates_respect_rank_range():
    passages = np.eye(6, dtype=np.float32)
    query = (np.array([[6, 5, 4, 3, 2, 1]], dtype=np.float32))
    query /= np.linalg.norm(query)
    candidates = dense_candidates(query, passages, rank_min=2, rank_max=4)[0]
    assert [(i, r) for i, _, r in candidates] == [(1, 2), (2, 3), (3, 4)]


def test_guard_drops_by_reason():
    guard = NegativeGuard(relative_margin=0.1, max_score=0.9, exclude_same_document=True)
    common = dict(positive_ids={"p"}, chosen={"c"}, positive_score=0.8, positive_docs={"D"})
    assert not guard.allows("p", score=0.1, candidate_doc="X", **common)
    assert not guard.allows("c", score=0.1, candidate_doc="X", **common)
    assert not guard.allows("n1", score=0.1, candidate_doc="D", **common)
    assert not guard.allows("n2", score=0.95, candidate_doc="X", **common)
    assert not guard.allows("n3", score=0.75, candidate_doc="X", **common)   # > 0.8 * 0.9 = 0.72
    assert guard.allows("n4", score=0.70, candidate_doc="X", **common)
    assert guard.drops == {"is_positive": 1, "duplicate": 1, "same_document": 1, "above_max_score": 1,
                           "above_relative_margin": 1}


def _mix(seed=0, dense_lists=None, n_passages=20, plan=None):
    ids = [f"p{i}" for i in range(n_passages)]
    queries = [MiningQuery(qid=f"q{q}", pos_ids=[f"p{q}"]) for q in range(3)]
    dense_lists = dense_lists or [[(j, 0.5, r) for r, j in enumerate(range(n_passages), 1)] for _ in range(3)]
    guard = NegativeGuard()
    chosen, stats = mix_negatives(queries, {"dense": dense_lists}, plan or {"dense": 5, "random": 2}, n_passages,
                                  guard, seed, ids)
    return chosen, stats


def test_mixer_fills_quota_without_positives_or_repeats_and_is_seeded():
    chosen, stats = _mix()
    for q, picked in enumerate(chosen):
        indices = [i for i, *_ in picked]
        assert len(indices) == 7 and len(set(indices)) == 7 and q not in indices
        assert [s for _, s, *_ in picked].count("dense") == 5
    assert stats["negatives_per_strategy"] == {"dense": 15, "random": 6}
    assert _mix(seed=0)[0] == chosen
    assert _mix(seed=1)[0] != chosen


def test_dry_strategy_tops_up_from_random_and_empty_queries_are_counted():
    chosen, stats = _mix(dense_lists=[[(1, 0.5, 2)], [], []], plan={"dense": 3, "random": 1})
    assert [s for _, s, *_ in chosen[0]] == ["dense", "random", "random", "random"]
    assert all(len(p) == 4 for p in chosen)
    chosen, stats = _mix(n_passages=1, dense_lists=[[(0, 0.5, 1)]] * 3, plan={"dense": 1, "random": 1})
    # One passage in the corpus, which is query 0's positive: no negative can survive for query 0.
    assert chosen[0] == [] and stats["queries_without_negatives"] == 1
    assert stats["drops"]["unfilled"] > 0


def test_given_negatives_come_first_count_toward_the_quota_and_never_include_a_positive():
    ids = [f"p{i}" for i in range(20)]
    queries = [MiningQuery(qid="q0", pos_ids=["p0"], given=[5, 0, 6])]
    dense = [[(j, 0.5, r) for r, j in enumerate(range(1, 20), 1)]]
    guard = NegativeGuard()
    chosen, stats = mix_negatives(queries, {"dense": dense}, {"dense": 3, "random": 2}, 20, guard, 0, ids)
    strategies = [s for _, s, *_ in chosen[0]]
    assert [i for i, *_ in chosen[0]][:2] == [5, 6] and strategies[:2] == ["given", "given"]
    assert strategies.count("dense") == 1 and strategies.count("random") == 2 and len(chosen[0]) == 5
    assert stats["drops"]["given_positive_or_repeat"] == 1
