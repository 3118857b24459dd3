"""Tokenisation for lexical methods: jieba words (TF-IDF, keywords, BM25 with ``lexical.tokens: words``) and CJK
character bigrams (BM25's default)."""
from __future__ import annotations

import functools
import logging
import re

_WORD = re.compile(r"\w", re.UNICODE)


@functools.lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def content_tokens(text: str) -> list[str]:
    """jieba search-mode tokens, lower-cased, without punctuation and whitespace."""
    return [t.lower() for t in _jieba().cut_for_search(text) if _WORD.search(t)]


def content_tokens_of(texts: list[str], what: str) -> list[list[str]]:
    """``content_tokens`` of each text, over worker processes for a large corpus (``bgetune.parallel``)."""
    from bgetune.parallel import map_texts

    return map_texts(content_tokens, texts, f"jieba words of the {what}")


def as_given(tokens: list[str]) -> list[str]:
    """A scikit-learn analyzer for texts tokenized already (``content_tokens_of``, keyword lists)."""
    return tokens


# Scripts written without spaces between words: Han (CJK ideographs and their extensions) and Japanese kana.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RUN_OR_WORD = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")


def cjk_bigram_tokens(text: str) -> list[str]:
    """Each CJK character and each adjacent pair in a run of them; other scripts as lower-cased words.

    Lucene's CJK bigrams with unigrams: no segmenter to miss a domain term (jieba cuts 甲状腺结节 its own way; its
    pairs 甲状, 状腺, 腺结, 结节 match however a question words it), and the single characters keep one-character
    words findable. ``cjk_bigram_tokens("HPV疫苗")`` → ``["hpv", "疫", "苗", "疫苗"]``.
    """
    tokens = []
    for run in _CJK_RUN_OR_WORD.findall(text):
        if _IS_CJK.match(run):
            tokens.extend(run)
            tokens.extend(a + b for a, b in zip(run, run[1:]))
        else:
            tokens.append(run.lower())
    return tokens


def lexical_tokens(text: str, kind: str) -> list[str]:
    """The tokens BM25 indexes, by ``lexical.tokens``: ``cjk_bigrams`` or ``words`` (jieba)."""
    if kind == "cjk_bigrams":
        return cjk_bigram_tokens(text)
    if kind == "words":
        return content_tokens(text)
    raise ValueError(f"unknown lexical tokens {kind!r}: cjk_bigrams or words")


def lexical_tokens_of(texts: list[str], kind: str, what: str) -> list[list[str]]:
    """``lexical_tokens`` of each text; jieba's over worker processes for a large corpus (bigrams are fast)."""
    if kind == "words":
        return content_tokens_of(texts, what)
    return [lexical_tokens(text, kind) for text in texts]
