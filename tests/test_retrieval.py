from bgetune.evaluation.retrieval import bm25_rankings, dense_rankings
from bgetune.lexical import BM25Index


def test_bm25_ranks_the_lexical_twin_first():
    passages = ["空调自清洁功能可以去除异味", "冰箱冷藏室温度设置为四度", "洗衣机筒自洁每月一次"]
    rankings = bm25_rankings(passages, ["a", "b", "c"], ["冰箱冷藏温度", "洗衣机筒自洁"], k=3)
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
