"""Word tokenisation for lexical methods (BM25, TF-IDF, keywords): jieba for Chinese, lower-cased words otherwise."""
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
