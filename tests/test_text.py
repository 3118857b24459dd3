"""Tokens for the lexical methods: jieba words, and CJK character bigrams (BM25's default)."""
from bgetune.text import cjk_bigram_tokens, lexical_tokens


def test_cjk_runs_give_each_character_and_each_adjacent_pair():
    assert cjk_bigram_tokens("高血压") == ["高", "血", "压", "高血", "血压"]
    # punctuation ends a run: no pair across it
    assert cjk_bigram_tokens("发烧，咳嗽") == ["发", "烧", "发烧", "咳", "嗽", "咳嗽"]


def test_other_scripts_stay_lower_cased_words_beside_the_cjk_pairs():
    assert cjk_bigram_tokens("HPV疫苗3针") == ["hpv", "疫", "苗", "疫苗", "3", "针"]
    assert cjk_bigram_tokens("Blood pressure") == ["blood", "pressure"]
    assert cjk_bigram_tokens("，。！") == []


def test_lexical_tokens_dispatches_on_the_param():
    assert lexical_tokens("甲状腺结节", "words") == ["甲状腺", "结节"]
    assert "状腺" in lexical_tokens("甲状腺结节", "cjk_bigrams")
