import numpy as np
import pytest

from bgetune.evaluation.retrieval import (WindowCandidates, best_per_owner, best_vector_top_k, bm25_rankings,
                                          dense_rankings, mixed_ranking, passage_windows, tune_window_weight,
                                          window_candidates)
from bgetune.lexical import BM25Index
from bgetune.params import LexicalParams


def test_bm25_ranks_the_lexical_twin_first():
    passages = ["空调自清洁功能可以去除异味", "冰箱冷藏室温度设置为四度", "洗衣机筒自洁每月一次"]
    for tokens in ("cjk_bigrams", "words"):
        rankings = bm25_rankings(passages, ["a", "b", "c"], ["冰箱冷藏温度", "洗衣机筒自洁"], k=3,
                                 lexical=LexicalParams(tokens=tokens))
        assert rankings[0][0] == "b" and rankings[1][0] == "c"


def test_bm25_query_without_known_words_is_unranked_not_an_error():
    indices, scores = BM25Index(["一段文字", "另一段"]).search(["zzz"], k=2)
    assert indices == [[0, 1]] and scores == [[0.0, 0.0]]


def test_dense_rankings_return_every_passage_once(tiny_model):
    texts = ["red cat", "blue dog", "green fish"]
    ranked = dense_rankings(tiny_model, texts, ["a", "b", "c"], ["red cat"], k=3, progress=False)
    assert sorted(ranked.ids[0]) == ["a", "b", "c"] and ranked.ids[0][0] == "a"
    assert ranked.scores[0] == sorted(ranked.scores[0], reverse=True)
    assert ranked.query_vectors.shape == (1, 32) and ranked.passage_vectors.shape == (3, 32)


def test_dense_rankings_rank_given_query_vectors_as_they_are(tiny_model):
    texts = ["red cat", "blue dog", "green fish"]
    encoded = dense_rankings(tiny_model, texts, ["a", "b", "c"], ["blue dog"], k=3, progress=False)
    moved = encoded.passage_vectors[[2]]              # a query vector no query text encodes to: green fish's own
    ranked = dense_rankings(tiny_model, texts, ["a", "b", "c"], [], k=3, progress=False,
                            passage_vectors=encoded.passage_vectors, query_vectors=moved)
    assert ranked.ids[0][0] == "c" and abs(ranked.scores[0][0] - 1.0) < 1e-5
    assert ranked.query_vectors is moved


def test_passage_windows_cut_only_long_passages_into_whole_sentences():
    long = "红猫在这里睡觉。蓝狗在门口叫。绿鱼在水里游来游去。小鸟在树上唱歌。"
    texts = ["短短一句。", long, "另一句短的。"]
    windows, owners = passage_windows(texts, 18, 8)
    assert owners.tolist() == [1, 1, 1]
    # Whole sentences up to 18 characters; the next window starts with the last sentence before it when that fits
    # the overlap (蓝狗在门口叫。 is 7 characters, within 8; 绿鱼在水里游来游去。 is 10, beyond it).
    assert windows == ["红猫在这里睡觉。蓝狗在门口叫。", "蓝狗在门口叫。绿鱼在水里游来游去。", "小鸟在树上唱歌。"]
    windows, owners = passage_windows(texts, 100, 50)     # nothing longer than 100 characters: no windows
    assert windows == [] and len(owners) == 0


@pytest.mark.parametrize("k", [1, 3, 6])
def test_best_vector_top_k_ranks_owners_by_their_best_vector_exactly(k):
    rng = np.random.default_rng(k)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    owners = np.concatenate([np.arange(6), rng.integers(0, 6, 34)])
    queries = rng.normal(size=(5, 8)).astype(np.float32)
    ranked, scores = best_vector_top_k(queries, vectors, owners, k)
    for q in range(5):
        best = {o: max(float(queries[q] @ vectors[i]) for i in np.flatnonzero(owners == o)) for o in range(6)}
        expected = sorted(best, key=lambda o: -best[o])[:k]
        assert ranked[q] == expected
        assert scores[q] == pytest.approx([best[o] for o in expected], abs=1e-5)


def test_best_per_owner_keeps_the_best_score_and_orders_ties_by_owner():
    ranked, scores = best_per_owner([[4, 0, 3, 1]], [[0.9, 0.5, 0.5, 0.2]], np.array([0, 1, 2, 1, 3]), k=3)
    assert ranked == [[3, 0, 1]] and scores == [[0.9, 0.5, 0.5]]


def test_dense_rankings_with_windows_score_a_passage_by_its_best_vector(tiny_model):
    from bgetune.search import encode

    texts = ["red cat. blue dog. green fish. small bird. big apple.", "banana", "red dog, blue fish"]
    ids, queries = ["long", "short", "mixed"], ["green fish", "banana", "blue dog"]
    plain = dense_rankings(tiny_model, texts, ids, queries, k=3, progress=False)
    ranked = dense_rankings(tiny_model, texts, ids, queries, k=3, progress=False, windows=(20, 10))
    windows, owners = passage_windows(texts, 20, 10)
    assert owners.tolist() == [0] * len(windows) and ranked.window_owners.tolist() == owners.tolist()
    query_vectors = encode(tiny_model, queries, kind="query")
    full = query_vectors @ encode(tiny_model, texts, kind="document").T
    parts = query_vectors @ encode(tiny_model, windows, kind="document").T
    for q in range(3):
        best = {i: max([full[q, i]] + [parts[q, w] for w in range(len(windows)) if owners[w] == i]) for i in range(3)}
        assert ranked.ids[q] == [ids[i] for i in sorted(best, key=lambda i: -best[i])]
        assert ranked.scores[q] == pytest.approx(sorted(best.values(), reverse=True), abs=1e-5)
        # The long passage's score can only rise; the others' stay what one vector gives them.
        assert dict(zip(ranked.ids[q], ranked.scores[q]))["long"] >= dict(zip(plain.ids[q], plain.scores[q]))[
            "long"] - 1e-6
        assert dict(zip(ranked.ids[q], ranked.scores[q]))["short"] == pytest.approx(
            dict(zip(plain.ids[q], plain.scores[q]))["short"], abs=1e-6)
    # Windows already encoded are reused as given (here: none, which is one vector per passage again).
    empty = (np.zeros((0, 32), dtype=np.float32), np.zeros(0, dtype=np.int64))
    again = dense_rankings(tiny_model, texts, ids, queries, k=3, progress=False, windows=(20, 10),
                           window_vectors=empty)
    assert again.ids == plain.ids


def test_window_candidates_score_both_ways_exactly_and_the_mix_ranks_between_them():
    rng = np.random.default_rng(3)
    passages = rng.normal(size=(8, 6)).astype(np.float32)
    windows = rng.normal(size=(10, 6)).astype(np.float32)
    owners = np.array([0, 0, 2, 2, 2, 5, 5, 6, 7, 7])
    queries = rng.normal(size=(4, 6)).astype(np.float32)
    candidates = window_candidates(queries, passages, windows, owners, pool=8)
    ids = [f"p{i}" for i in range(8)]
    for q in range(4):
        assert candidates.indices[q].tolist() == list(range(8))          # a pool of 8 holds every passage
        own = passages @ queries[q]
        best = np.array([max([own[i]] + [windows[w] @ queries[q] for w in range(10) if owners[w] == i])
                         for i in range(8)])
        assert candidates.own[q] == pytest.approx(own, abs=1e-5) and candidates.best[q] == pytest.approx(best, abs=1e-5)
        for weight in (0.0, 0.3, 1.0):
            ranked, scores = mixed_ranking(candidates, ids, weight, 8)
            mixed = (1 - weight) * own + weight * best
            assert ranked[q] == [ids[i] for i in np.argsort(-mixed, kind="stable")]
            assert scores[q] == pytest.approx(sorted(mixed, reverse=True), abs=1e-5)


def test_tune_window_weight_takes_the_best_val_weight_and_ties_go_to_one_vector():
    # Query 0's positive p1 leads by its own vector, query 1's positive p0 only by a window: a mix ranks both first.
    candidates = WindowCandidates([np.array([0, 1]), np.array([0, 1])],
                                  [np.array([0.5, 0.6]), np.array([0.5, 0.6])],
                                  [np.array([0.55, 0.6]), np.array([0.9, 0.6])])
    weight, trials = tune_window_weight(candidates, ["p0", "p1"], [{"p1"}, {"p0"}])
    assert [t["weight"] for t in trials][:3] == [0.0, 0.1, 0.2] and len(trials) == 11
    assert trials[0]["val_ndcg@10"] < 1.0 and weight == min(t["weight"] for t in trials if t["val_ndcg@10"] == 1.0)
    assert weight == 0.3     # 0.7 × 0.5 + 0.3 × 0.9 = 0.62 > 0.6 puts p0 first; at 0.2 it is 0.58 < 0.6
    same = WindowCandidates([np.array([0, 1])], [np.array([0.5, 0.6])], [np.array([0.5, 0.6])])
    assert tune_window_weight(same, ["p0", "p1"], [{"p1"}])[0] == 0.0   # nothing to gain: one vector
