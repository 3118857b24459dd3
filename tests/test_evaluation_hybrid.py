import pytest

from bgetune.evaluation.hybrid import (CONVEX_DENSE_WEIGHTS, FUSION_POOL, convex_fusion, convex_scores,
                                       fuse_all, reciprocal_rank_fusion, tune_lexical, tune_weights)


def test_reciprocal_rank_fusion_hand_computed():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "d"]], [1.0, 1.0], k=1)
    # a: 1/2; b: 1/3 + 1/3; c: 1/4 + 1/2; d: 1/4
    assert fused == ["c", "b", "a", "d"]
    assert reciprocal_rank_fusion([["a", "b"], ["b", "a"]], [2.0, 1.0], k=1) == ["a", "b"]
    assert reciprocal_rank_fusion([["a"], ["b"]], [1.0, 1.0], k=60, depth=1) == ["a"]   # tie: first seen


def test_convex_fusion_hand_computed():
    # dense min-max: a 1, b 0.5, c 0; bm25: c 1, d 0.5, b 0 (d missing from dense: 0 there, and so on)
    dense, bm25 = (["a", "b", "c"], [0.9, 0.6, 0.3]), (["c", "d", "b"], [10.0, 6.0, 2.0])
    fused = convex_fusion([dense[0], bm25[0]], [dense[1], bm25[1]], [0.3, 0.7])
    # a 0.3; b 0.15; c 0.7; d 0.35
    assert fused == ["c", "d", "a", "b"]
    assert convex_fusion([dense[0], bm25[0]], [dense[1], bm25[1]], [1.0, 0.0]) == ["a", "b", "c", "d"]
    assert convex_fusion([dense[0], bm25[0]], [dense[1], bm25[1]], [0.3, 0.7], depth=2) == ["c", "d"]
    # the scores behind that order, and the tie-break order (dense list first, then BM25's newcomers)
    scores, first_seen = convex_scores([dense[0], bm25[0]], [dense[1], bm25[1]], [0.3, 0.7])
    assert scores == pytest.approx({"a": 0.3, "b": 0.15, "c": 0.7, "d": 0.35})
    assert first_seen == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_convex_fusion_keeps_the_score_gap_that_rank_fusion_throws_away():
    # Dense ranks the right passage r third by a hair; BM25 puts it first by a mile. RRF only sees ranks and
    # keeps the dense favourite x on top; the normalised scores lift r.
    dense = (["x", "y", "r", "w"], [0.800, 0.795, 0.790, 0.100])
    bm25 = (["r", "x", "z"], [20.0, 2.0, 1.0])
    assert reciprocal_rank_fusion([dense[0], bm25[0]], [1.0, 1.0], k=60)[0] == "x"
    assert convex_fusion([dense[0], bm25[0]], [dense[1], bm25[1]], [0.5, 0.5])[0] == "r"


def test_convex_fusion_edge_lists():
    # A query without a known BM25 word has an empty lexical list: the dense order stands.
    assert convex_fusion([["a", "b"], []], [[0.5, 0.2], []], [0.5, 0.5]) == ["a", "b"]
    # Equal scores carry no order: all members count as the list's best, ties broken by first appearance.
    assert convex_fusion([["a", "b"], ["b", "c"]], [[0.4, 0.4], [3.0, 3.0]], [0.5, 0.5]) == ["b", "a", "c"]
    with pytest.raises(ValueError, match="3 passages with 2 scores"):
        convex_fusion([["a", "b", "c"], []], [[0.1, 0.2], []], [0.5, 0.5])


def test_fuse_all_cuts_each_list_to_the_pool_and_convex_needs_scores():
    deep = [f"p{i}" for i in range(FUSION_POOL + 5)]
    dense, lexical = [deep], [[]]
    assert fuse_all(dense, lexical, [1.0, 1.0], 60, None) == [deep[:FUSION_POOL]]
    scores = [[1.0 - i / 1000 for i in range(len(deep))]]
    assert fuse_all(dense, lexical, [0.5, 0.5], 60, None, "convex", scores, [[]]) == [deep[:FUSION_POOL]]
    with pytest.raises(ValueError, match="needs the dense and the BM25 scores"):
        fuse_all(dense, lexical, [0.5, 0.5], 60, 10, method="convex")
    with pytest.raises(ValueError, match="unknown fusion 'max'"):
        fuse_all(dense, lexical, [0.5, 0.5], 60, 10, method="max")


def test_tune_weights_picks_the_val_best_and_the_smaller_dense_weight_on_a_tie():
    # Query 1's answer r is dense's third by a hair and BM25's first by a mile; query 2 is the mirror: s is dense's
    # first by a mile and BM25's second by a hair. Convex gets both first for dense weights 0.1-0.4; RRF, seeing the
    # same ranks in both, puts one of them first whatever the dense weight.
    dense = [["x", "y", "r"], ["s", "u", "t"]]
    dense_scores = [[0.80, 0.795, 0.79], [0.9, 0.5, 0.1]]
    lexical = [["r", "x"], ["t", "s", "v"]]
    lexical_scores = [[20.0, 2.0], [5.0, 4.9, 0.0]]
    relevant = [{"r"}, {"s"}]
    weights, trials = tune_weights("convex", dense, lexical, relevant, dense_scores=dense_scores,
                                   lexical_scores=lexical_scores)
    assert [t["dense_weight"] for t in trials] == list(CONVEX_DENSE_WEIGHTS)
    assert all(abs(sum(t["weights"]) - 1) < 1e-9 for t in trials)
    best = max(t["val_ndcg@10"] for t in trials)
    assert best == pytest.approx(1.0)
    assert trials[0]["val_ndcg@10"] < 1 and trials[-1]["val_ndcg@10"] < 1   # either side alone misses one
    first_best = next(t for t in trials if t["val_ndcg@10"] == best)
    assert weights == first_best["weights"] == [0.1, 0.9]   # the smallest dense weight among the tied best
    rrf_weights, rrf_trials = tune_weights("rrf", dense, lexical, relevant, k=60)
    assert rrf_weights[1] == 1.0 and max(t["val_ndcg@10"] for t in rrf_trials) < 1   # ranks alone cannot


def test_tune_lexical_keeps_the_bm25_val_fuses_best_with_and_the_first_on_a_tie():
    # Dense ranks the answer r second; the plain BM25 ranks a decoy first and r nowhere, the weighted one ranks r
    # first: only the weighted BM25 lifts r to the top (at any dense weight below 1).
    dense, dense_scores = [["d", "r", "x"]], [[0.9, 0.8, 0.1]]
    plain, weighted = ([["d", "x"]], [[5.0, 1.0]]), ([["r", "d"]], [[5.0, 1.0]])
    chosen, options = tune_lexical("convex", dense, dense_scores, {"plain": plain, "term_weighted": weighted},
                                   [{"r"}])
    assert chosen == "term_weighted" and options["term_weighted"]["val_ndcg@10"] == pytest.approx(1.0)
    assert options["plain"]["val_ndcg@10"] < 1
    assert options["term_weighted"]["weights"] == [0.0, 1.0]       # its own tuned weights: BM25 alone is perfect
    # The same ranking under both names: a tie, and the first listed (the simpler BM25) is kept.
    chosen, options = tune_lexical("convex", dense, dense_scores, {"plain": weighted, "term_weighted": weighted},
                                   [{"r"}])
    assert chosen == "plain"
    # Fixed weights (eval.hybrid.tune off): each BM25 is scored at them, one trial each.
    chosen, options = tune_lexical("convex", dense, dense_scores, {"plain": plain, "term_weighted": weighted},
                                   [{"r"}], weights=[1.0, 0.0])
    assert chosen == "plain" and options["plain"]["weights"] == [1.0, 0.0]      # dense alone: both 1/log2(3)
    assert [len(o["trials"]) for o in options.values()] == [1, 1]
    assert options["plain"]["val_ndcg@10"] == pytest.approx(options["term_weighted"]["val_ndcg@10"])
    chosen, _ = tune_lexical("convex", dense, dense_scores, {"plain": plain, "term_weighted": weighted}, [{"r"}],
                             weights=[0.5, 0.5])
    assert chosen == "term_weighted"     # r: 0.5·0.875 + 0.5·1 beats d: 0.5 + 0.5·0
