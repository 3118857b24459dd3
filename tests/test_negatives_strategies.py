import json
import logging

import numpy as np
import pytest

from bgetune.negatives.bm25 import bm25_candidates
from bgetune.negatives.cross_domain import cross_domain_candidates, passage_domains
from bgetune.negatives.keyword import keyword_candidates
from bgetune.negatives.length import length_candidates
from bgetune.negatives.tfidf import tfidf_candidates
from bgetune.params import LexicalParams, MiningParams
from bgetune.records import Pair, Passage

CORPUS = ["空调自清洁功能可以去除蒸发器上的灰尘和异味",
          "冰箱冷藏室温度建议设置在四度左右",
          "洗衣机筒自洁程序每月运行一次可以去除霉味",
          "空调自清洁功能每月运行一次去除异味",          # the lexical twin of passage 0
          "净水器反渗透膜滤芯二十四个月更换"]
QUERY = ["空调自清洁 去除异味"]


def ids(candidates):
    return [i for i, *_ in candidates]


def test_bm25_ranks_the_planted_lexical_twins_first():
    ranked = ids(bm25_candidates(CORPUS, QUERY, rank_min=1, rank_max=5, lexical=LexicalParams())[0])
    assert set(ranked[:2]) == {0, 3}
    assert 1 not in ranked and 4 not in ranked   # no shared word: score 0, not a candidate
    assert ids(bm25_candidates(CORPUS, QUERY, rank_min=2, rank_max=5, lexical=LexicalParams())[0]) == ranked[1:]


@pytest.mark.parametrize("analyzer", ["word", "char"])
def test_tfidf_ranks_the_planted_lexical_twins_first(analyzer):
    ranked = ids(tfidf_candidates(CORPUS, QUERY, rank_min=1, rank_max=5, analyzer=analyzer)[0])
    assert set(ranked[:2]) == {0, 3}


def test_keyword_overlap():
    candidates = keyword_candidates(CORPUS, ["空调自清洁怎么去除异味"], top_keywords=5)[0]
    assert {0, 3} <= set(ids(candidates)) and 1 not in ids(candidates)
    scores = [s for _, s, _ in candidates]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_keyword_scores_are_shared_keyword_shares_ranked_with_ties_by_passage(monkeypatch):
    import bgetune.negatives.keyword as keyword

    # keywords = the space-separated words (the first top_k), so every overlap is known
    monkeypatch.setattr(keyword, "extract_keywords", lambda text, top_k, method="tfidf": text.split()[:top_k])
    passages = ["a b c", "b c", "x y", "c a", "a b c d", "b"]
    queries = ["a b c", "z", "", "c d", "b"]
    # one query per sparse product as well as all at once: the same lists
    for batch in (1, 256):
        got = keyword_candidates(passages, queries, top_keywords=3, max_candidates=3, batch=batch)
        assert got[0] == [(0, 1.0, 1), (4, 1.0, 2), (1, 2 / 3, 3)]   # 3 of 3 shared (ties by index), then 2 of 3
        assert got[1] == [] and got[2] == []                          # unknown keyword; no keyword at all
        assert got[3] == [(4, 1.0, 1), (0, 0.5, 2), (1, 0.5, 3)]
        assert got[4] == [(0, 1.0, 1), (1, 1.0, 2), (4, 1.0, 3)]      # cut at max_candidates


def test_cross_domain_never_returns_the_positives_domain_and_clusters_without_labels():
    vectors = np.eye(4, dtype=np.float32)
    query = np.array([[1.0, 0.9, 0.5, 0.1]], dtype=np.float32)
    domains = ["a", "a", "b", "c"]
    got = cross_domain_candidates(query, vectors, domains, [{"a"}], max_candidates=10)[0]
    assert ids(got) == [2, 3]
    labels, source = passage_domains([None] * 4, vectors, clusters=2, seed=0)
    assert source == "kmeans" and len(set(labels)) == 2
    labels, source = passage_domains(domains, vectors, clusters=2, seed=0)
    assert (labels, source) == (domains, "field")


def test_length_candidates_are_within_tolerance_closest_first():
    got = length_candidates([100, 50, 118, 95, 130], positive_lengths=[100.0], tolerance=0.2, max_candidates=10)[0]
    assert ids(got) == [0, 3, 2]


def corpus_passages():
    texts = CORPUS + ["空调自清洁功能可以去除蒸发器上的灰尘和异味"]   # a planted duplicate of the positive
    return [Passage(id=f"p{i}", doc_id=f"d{i}", text=t, split="train", domain="x" if i % 2 else "y")
            for i, t in enumerate(texts)]


def test_guard_drops_planted_duplicate_and_output_is_byte_identical_for_a_seed(tiny_model, caplog):
    from bgetune.negatives.mine import mine
    from bgetune.records import TrainExample

    passages = corpus_passages()
    pairs = [Pair(qid="q0", query="空调 异味", pos_ids=["p0"], source="existing"),
             Pair(qid="q1", query="冰箱 温度", pos_ids=["p1"], source="existing")]
    params = MiningParams(num_negatives=4, hard_ratio=0.75,
                          weights={"dense": 1, "bm25": 1, "tfidf": 1, "keyword": 1, "cross_domain": 1, "length": 1},
                          guard={"relative_margin": 0.0001})
    params.dense.rank_max = params.bm25.rank_max = params.tfidf.rank_max = 6
    with caplog.at_level(logging.WARNING, logger="bgetune"):
        examples, report = mine(passages, pairs, tiny_model, params, seed=3, progress=False)
    # 3 hard negatives over 6 equal weights: the largest remainders (ties by name) go to bm25, cross_domain, dense;
    # the other three get none, and the log says so
    assert {k: v for k, v in report["plan"].items() if v} == {"bm25": 1, "cross_domain": 1, "dense": 1, "random": 1}
    assert any(m.startswith("mining.weights: tfidf, keyword, length rounded to no negative of the 3 hard ones")
               for m in caplog.messages)
    assert "p5" not in examples[0].neg_ids            # identical text: same score as the positive → dropped
    assert report["drops"].get("above_relative_margin", 0) >= 1
    assert all("p0" not in e.neg_ids or e.qid != "q0" for e in examples)
    assert all(len(e.neg_ids) == len(set(e.neg_ids)) for e in examples)
    assert set(report["timings"]) >= {"encode_s", "search_dense_s", "search_bm25_s", "mix_s"}

    def dump(seed):
        out, _ = mine(passages, pairs, tiny_model, params, seed=seed, progress=False)
        return "\n".join(json.dumps(e.to_json(), ensure_ascii=False) for e in out)

    assert dump(3) == dump(3)
    assert isinstance(examples[0], TrainExample)


def test_far_random_mode_and_hnsw_report_recall(tiny_model):
    from bgetune.negatives.mine import mine

    passages = corpus_passages()
    pairs = [Pair(qid="q0", query="空调", pos_ids=["p0"], source="existing")]
    params = MiningParams(num_negatives=2, hard_ratio=0.5, weights={"dense": 1},
                          dense={"index": "hnsw", "rank_min": 2, "rank_max": 4}, random={"mode": "far", "far_rank": 2})
    examples, report = mine(passages, pairs, tiny_model, params, seed=0, progress=False)
    assert report["dense_index"] == "hnsw" and 0.0 <= report["dense_index_recall"] <= 1.0
    assert report["negatives_per_strategy"]["random"] == 1


def test_the_bm25_strategy_reads_mining_bm25s_own_tokens(tiny_model):
    from bgetune.negatives.mine import mine

    # jieba cuts the query's 反流 and the passage's 反流性 apart; CJK bigrams match them (tests/test_lexical.py)
    texts = ["反流性食管炎的治疗方法", "食管癌的早期症状有哪些", "儿童感冒发烧", "胃食管反流病的诊断标准"]
    passages = [Passage(id=f"p{i}", doc_id=f"d{i}", text=t, split="train") for i, t in enumerate(texts)]
    pairs = [Pair(qid="q0", query="胃食管反流怎么治", pos_ids=["p3"], source="existing")]
    for tokens in ("words", "cjk_bigrams"):
        params = MiningParams(num_negatives=1, hard_ratio=1.0, weights={"bm25": 1.0},
                              bm25={"rank_min": 2, "rank_max": 3, "tokens": tokens})
        examples, report = mine(passages, pairs, tiny_model, params, seed=0, progress=False)
        assert report["bm25"] == {"tokens": tokens, "k1": 1.5, "b": 0.75}
        expected = bm25_candidates(texts, ["胃食管反流怎么治"], 2, 3, lexical=params.bm25.lexical())[0]
        assert examples[0].neg_ids[0] in {f"p{i}" for i, *_ in expected}
