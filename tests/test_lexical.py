"""BM25 over params.lexical: the tokens, k1 and b reach bm25s, learned query-term weights weigh its terms, and the
report phrases name the BM25 used."""
import pytest

from bgetune.lexical import BM25Index, describe_lexical, term_recall_weights
from bgetune.params import LexicalParams, ParamsError, params_from_dict

PASSAGES = ["反流性食管炎的治疗方法", "食管癌的早期症状有哪些", "儿童感冒发烧"]


def test_cjk_bigrams_match_a_term_jieba_cuts_differently():
    # jieba cuts the query's 反流 as a word but the passage's 反流性 as another: only 食管 is shared, and the two
    # passages with it tie. The character pairs 反流 and 食管 match however either is cut.
    query = ["胃食管反流怎么治"]
    words, word_scores = BM25Index(PASSAGES, LexicalParams(tokens="words")).search(query, 3)
    assert word_scores[0][0] == word_scores[0][1]
    pairs, pair_scores = BM25Index(PASSAGES, LexicalParams(tokens="cjk_bigrams")).search(query, 3)
    assert pairs[0][0] == 0 and pair_scores[0][0] > 2 * pair_scores[0][1]


def test_k1_and_b_reach_the_scoring():
    def tf_ratio(k1):   # a passage with the word 4 times against once: a larger k1 saturates later
        _, scores = BM25Index(["肝 肝 肝 肝 肾", "肝 肾"], LexicalParams(k1=k1)).search(["肝"], 2)
        return scores[0][0] / scores[0][1]

    assert tf_ratio(0.5) < tf_ratio(1.2) < tf_ratio(3.0)
    texts = ["肝", "肝 肾 脾 胃 心 肺"]
    _, no_length = BM25Index(texts, LexicalParams(b=0.0)).search(["肝"], 2)
    assert no_length[0][0] == pytest.approx(no_length[0][1])       # b 0: length does not matter
    order, with_length = BM25Index(texts, LexicalParams(b=0.75)).search(["肝"], 2)
    assert order[0][0] == 0 and with_length[0][0] > with_length[0][1]


def test_scores_of_given_passages_use_the_same_tokens():
    index = BM25Index(PASSAGES)
    indices, scores = index.search(["胃食管反流"], 3)
    assert index.scores("胃食管反流", indices[0]) == pytest.approx(scores[0])


@pytest.mark.parametrize("section, message", [({"tokens": "jieba"}, "lexical.tokens"), ({"k1": 0}, "lexical.k1"),
                                              ({"b": 1.5}, "lexical.b")])
def test_bad_lexical_params_name_the_key(section, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict({"lexical": section})


def test_describe_names_the_tokens_and_the_constants():
    assert describe_lexical(LexicalParams().model_dump()) == (
        "BM25 (k1 1.2, b 0.75) over each Chinese character and each adjacent pair (other scripts as words)")
    assert describe_lexical({"tokens": "words", "k1": 0.9, "b": 0.4}) == "BM25 (k1 0.9, b 0.4) over jieba's search-mode words"
    # results written before the lexical section existed: jieba's words at bm25s's defaults, the only BM25 then
    assert describe_lexical(None) == "BM25 (k1 1.5, b 0.75) over jieba's search-mode words"


def test_term_recall_weights_hand_computed():
    # Characters as terms. Each question has 5; 2 of each recur in its answer: the mean recall is 4 / 10 = 0.4.
    pairs = [("感冒怎么办", "感冒多喝水"), ("发烧怎么办", "发烧吃退烧药")]
    weights = term_recall_weights(pairs, list, smoothing=5.0)
    # 办: in 2 questions, in neither answer: (0 + 5 × 0.4) / (2 + 5) / 0.4; 感: in 1 question and its answer
    assert weights["办"] == pytest.approx(2.0 / 7 / 0.4)
    assert weights["感"] == pytest.approx(3.0 / 6 / 0.4)
    assert set(weights) == set("感冒怎么办发烧")       # only question terms get a weight
    # no smoothing: recall relative to the mean
    raw = term_recall_weights(pairs, list, smoothing=0.0)
    assert raw["办"] == 0.0 and raw["感"] == pytest.approx(1 / 0.4)
    # a large smoothing pulls every weight toward 1
    assert term_recall_weights(pairs, list, smoothing=1e6)["办"] == pytest.approx(1.0, abs=1e-5)


def test_term_recall_weights_edge_cases():
    assert term_recall_weights([], list) == {}
    assert term_recall_weights([("甲乙", "丙丁")], list) == {"乙": 1.0, "甲": 1.0}   # nothing shared: nothing learned


def test_weighted_bm25_lets_the_topic_outweigh_the_chit_chat():
    # The question shares 医生 and 请问 with a chit-chat passage and only 胃 with the answer: plain BM25 ranks the
    # chit-chat first; with 医生/请问 weighted down (as training pairs teach) the answer comes first.
    passages = ["医生请问医生您好请问", "胃疼可以吃奥美拉唑", "膝盖疼的原因"]
    query = ["医生请问胃疼"]
    plain, _ = BM25Index(passages, LexicalParams(tokens="words")).search(query, 3)
    assert plain[0][0] == 0
    weighted_index = BM25Index(passages, LexicalParams(tokens="words"), {"医生": 0.1, "请问": 0.1, "胃疼": 2.0})
    weighted, scores = weighted_index.search(query, 3)
    assert weighted[0][0] == 1
    assert weighted_index.scores(query[0], weighted[0]) == pytest.approx(scores[0])


def test_unit_weights_score_as_plain_bm25():
    plain_index = BM25Index(PASSAGES)
    ones = BM25Index(PASSAGES, term_weights={})          # every term weighs 1 (none listed)
    for query in ("胃食管反流怎么治", "食管 食管 癌", "儿童发烧"):
        indices, scores = plain_index.search([query], 3)
        same_indices, same_scores = ones.search([query], 3)
        assert same_scores[0] == pytest.approx(scores[0], rel=1e-5)
        assert [i for i, s in zip(same_indices[0], same_scores[0]) if s > 0] == \
               [i for i, s in zip(indices[0], scores[0]) if s > 0]


def test_describe_names_learned_term_weights():
    lexical = {**LexicalParams().model_dump(),
               "term_weights": {"method": "term_recall", "train_questions": 120, "terms": 45}}
    text = describe_lexical(lexical, table="the table")
    assert text.endswith("each question term's score weighted by its term recall in the 120 train questions "
                         "(45 terms: the table)")
    assert describe_lexical({**lexical, "term_weights": {"method": "off"}}) == describe_lexical(LexicalParams().model_dump())


@pytest.mark.parametrize("section, message", [({"method": "idf"}, "eval.term_weights.method"),
                                              ({"smoothing": -1}, "eval.term_weights.smoothing")])
def test_bad_term_weight_params_name_the_key(section, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict({"eval": {"term_weights": section}})
    # YAML reads a bare off as false: it still means off
    assert params_from_dict({"eval": {"term_weights": {"method": False}}}).eval.term_weights.method == "off"
