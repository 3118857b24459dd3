"""BM25 over params.lexical: the tokens, k1 and b reach bm25s, and the report phrases name the BM25 used."""
import pytest

from bgetune.lexical import BM25Index, describe_lexical
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
