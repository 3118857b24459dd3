"""Offline queries for corpora without questions: titles (document structure) and key sentences.

- title → all passages under it (a Markdown heading → its section; an article title → the article);
- key sentence → its passage: the sentence whose words are rarest in the corpus (highest summed IDF), trailing
  punctuation removed, which is how a user who remembers one specific fact would search.

Example::

    pairs, report = heuristic_pairs(passages, [], params.qa_gen, seed=42)
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

from bgetune.chunking import split_sentences
from bgetune.records import Pair
from bgetune.text import content_tokens_of

MIN_SENTENCE_CHARS, MAX_SENTENCE_CHARS = 8, 80


def heuristic_pairs(passages, pairs, qa_params, seed: int, **_) -> tuple[list[Pair], dict]:
    params = qa_params.heuristic
    allowed = [p for p in passages if p.split in params.splits]
    out: list[Pair] = []
    report = Counter()
    if params.title_queries:
        by_title: dict[tuple[str, str], list[str]] = defaultdict(list)
        for p in allowed:
            if p.title and p.title.strip():
                by_title[(p.split, p.title.strip())].append(p.id)
        for (split, title), ids in sorted(by_title.items()):
            out.append(Pair(qid=f"title:{title}:{split}", query=title, pos_ids=ids, source="heuristic", split=split))
            report["title"] += 1
    if params.key_sentence_queries and params.key_sentences_per_passage > 0:
        documents = [set(tokens) for tokens in content_tokens_of([p.text for p in passages], "passages")]
        df = Counter(t for tokens in documents for t in tokens)
        idf = {t: math.log((len(documents) + 1) / (n + 0.5)) for t, n in df.items()}
        sentences = [[query for query in (s.strip().rstrip("。！？；!?;.…，,") for s in split_sentences(p.text))
                      if MIN_SENTENCE_CHARS <= len(query) <= MAX_SENTENCE_CHARS] for p in allowed]
        sentence_tokens = iter(content_tokens_of([q for queries in sentences for q in queries], "key sentences"))
        for p, queries in zip(allowed, sentences):
            candidates = [(-sum(idf.get(t, 0.0) for t in set(next(sentence_tokens))), query) for query in queries]
            if len(candidates) < 2:
                # A one-sentence passage would make the query the passage itself: nothing to learn.
                report["passage_without_key_sentence"] += 1
                continue
            for rank, (_, query) in enumerate(sorted(candidates)[: params.key_sentences_per_passage]):
                out.append(Pair(qid=f"key:{p.id}:{rank}", query=query, pos_ids=[p.id], source="heuristic", split=p.split))
                report["key_sentence"] += 1
    return out, dict(report)
