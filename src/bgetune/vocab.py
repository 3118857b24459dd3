"""Vocabulary expansion: teach a model's tokenizer the characters (and terms) of a domain it has never seen.

all-MiniLM-L6-v2 knows ~244 CJK characters, so almost all Chinese text becomes [UNK] and no amount of fine-tuning
can tell two passages apart. ``expand_vocabulary`` adds the missing tokens as whole tokens and gives each new
embedding row a sensible start: the mean of the embeddings of its old sub-tokens when it had any, else the mean of
all rows plus seeded noise scaled by the rows' spread (so new characters start as distinct as old ones).

Example::

    new = missing_characters(model.tokenizer, texts, min_count=1)
    report = expand_vocabulary(model, new, init_noise=1.0, seed=42)
    report["tokens_added"], unk_rate(model.tokenizer, texts)
"""
from __future__ import annotations

import functools
from collections import Counter
from typing import Iterable, Sequence

import torch


def missing_characters(tokenizer, texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Characters of ``texts`` that the tokenizer maps to its unknown token, most frequent first (ties by code point)."""
    counts = Counter(ch for text in texts for ch in text if not ch.isspace())
    unk = tokenizer.unk_token_id
    missing = []
    for ch, count in counts.items():
        if count < min_count:
            continue
        ids = tokenizer(ch, add_special_tokens=False)["input_ids"]
        if not ids or unk in ids:
            missing.append((ch, count))
    missing.sort(key=lambda item: (-item[1], item[0]))
    return [ch for ch, _ in missing]


def is_han(ch: str) -> bool:
    """A CJK unified ideograph (the basic block and extension A: the characters CC-CEDICT's headwords use)."""
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def known_characters(tokenizer, texts: Iterable[str], min_count: int = 1) -> list[str]:
    """Han characters of ``texts`` that the tokenizer already has as one token of its own, most frequent first (ties
    by code point): the rows ``dictionary.dictionary_init(..., known_rows=...)`` may re-start."""
    counts = Counter(ch for text in texts for ch in text if is_han(ch))
    unk = tokenizer.unk_token_id
    known = []
    for ch, count in counts.items():
        ids = tokenizer(ch, add_special_tokens=False)["input_ids"]
        if count >= min_count and len(ids) == 1 and ids[0] != unk:
            known.append((ch, count))
    known.sort(key=lambda item: (-item[1], item[0]))
    return [ch for ch, _ in known]


def unk_rate(tokenizer, texts: Sequence[str]) -> float:
    """The fraction of tokens (special tokens excluded) that are the unknown token."""
    unk, total, unknown = tokenizer.unk_token_id, 0, 0
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        total += len(ids)
        unknown += sum(1 for i in ids if i == unk)
    return unknown / total if total else 0.0


def tokens_per_text(tokenizer, texts: Sequence[str]) -> float:
    if not texts:
        return 0.0
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return sum(len(ids) for ids in encoded) / len(texts)


def expand_vocabulary(model, new_tokens: Sequence[str], init_noise: float = 1.0, seed: int = 0) -> dict:
    """Add ``new_tokens`` to a SentenceTransformer's tokenizer and embedding matrix; returns what was done.

    Existing rows are never changed. The same tokens, noise and seed give bit-identical new rows, which is what lets
    the merge stage rebuild the expanded base that training started from. A SentencePiece tokenizer (XLM-RoBERTa,
    bge-m3) as transformers 5 loads it reads the text after an added token as a new word (one more ``▁``); the
    vocab stage's ``tokens_per_passage_after`` shows what that costs. (Its pre-tokenizer's ``prepend_scheme:
    first`` would avoid it, but transformers rebuilds the pre-tokenizer from the class on every load.)
    """
    from tokenizers import AddedToken

    tokenizer = model.tokenizer
    transformer = model[0].auto_model
    embeddings = transformer.get_input_embeddings().weight
    old_size = embeddings.shape[0]
    unk = tokenizer.unk_token_id
    # How each token was split before it existed: decides its initial row.
    old_pieces = [[i for i in tokenizer(t, add_special_tokens=False)["input_ids"] if i != unk] for t in new_tokens]
    # normalized=False: BERT's normaliser puts spaces around CJK characters, so a multi-character term would never
    # match the normalised text.
    added = tokenizer.add_tokens([AddedToken(t, normalized=False, single_word=False) for t in new_tokens])
    if added == 0:
        return {"tokens_added": 0, "vocab_size_before": old_size, "vocab_size_after": old_size}
    transformer.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    weight = transformer.get_input_embeddings().weight
    with torch.no_grad():
        old = weight[:old_size].float()
        mean, std = old.mean(dim=0), old.std(dim=0)
        generator = torch.Generator().manual_seed(seed)
        for token, pieces in zip(new_tokens, old_pieces):
            row = tokenizer.convert_tokens_to_ids(token)
            if row < old_size:
                continue  # already known (duplicate in the list)
            if pieces:
                value = weight[pieces].float().mean(dim=0)
            else:   # drawn on the CPU (same rows on any device), then moved to the embedding's device
                value = mean + init_noise * std * torch.randn(mean.shape, generator=generator).to(mean.device)
            weight[row] = value.to(weight.dtype)
    return {"tokens_added": added, "vocab_size_before": old_size, "vocab_size_after": len(tokenizer)}


def cooccurrence_init(model, texts: Sequence[str], old_vocab_size: int, window: int = 5, scale: float = 1.0,
                      seed: int = 0) -> dict:
    """Re-start the new embedding rows (ids ≥ ``old_vocab_size``) from the corpus: tokens used in similar contexts
    start near each other. Returns counts of rows set this way and rows left as they were.

    Why: with random rows an English base sees 2,000+ new characters as unrelated noise and must learn every one of
    them from the contrastive pairs alone. Here each new token that occurs in ``texts`` gets the row of a small
    count-based word embedding (PPMI over a ±``window`` token window weighted 1/distance, context counts smoothed
    by ^0.75, truncated SVD weighted by √S — Levy & Goldberg's recipe), scaled to unit variance per dimension on
    average and mapped onto the old rows' per-dimension mean and spread (× ``scale``): the spread of the random
    start, but with structure.
    Tokens that never occur stay as they were (mean of their old pieces, or seeded noise). Hand-written because no
    named dependency builds count embeddings; the SVD is scikit-learn's, seeded, so the rows are deterministic.

    Example::

        expand_vocabulary(model, new_tokens, init_noise=1.0, seed=42)
        cooccurrence_init(model, texts, old_vocab_size=30522, window=5, seed=42)["rows_from_cooccurrence"]
    """
    import numpy as np
    from scipy import sparse
    from sklearn.utils.extmath import randomized_svd

    tokenizer = model.tokenizer
    weight = model[0].auto_model.get_input_embeddings().weight
    vocab_size, dim = weight.shape
    rows, cols, vals = [], [], []
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        ids = np.asarray(ids, dtype=np.int64)
        for distance in range(1, window + 1):
            if len(ids) <= distance:
                break
            left, right = ids[:-distance], ids[distance:]
            rows += [left, right]
            cols += [right, left]
            vals.append(np.full(2 * len(left), 1.0 / distance))
    new_total = vocab_size - old_vocab_size
    if not rows:
        return {"rows_from_cooccurrence": 0, "rows_kept": new_total}
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    counts = sparse.csr_matrix((vals, (rows, cols)), shape=(vocab_size, vocab_size))
    counts.sum_duplicates()
    word_total = np.asarray(counts.sum(axis=1)).ravel()
    context_smoothed = np.asarray(counts.sum(axis=0)).ravel() ** 0.75
    targets = np.flatnonzero(word_total[old_vocab_size:] > 0) + old_vocab_size
    block = counts[targets].tocoo()
    # PMI(w, c) = log P(w, c) / (P(w) · P_0.75(c)); only positive associations are kept (PPMI).
    pmi = np.log(block.data * context_smoothed.sum() / (word_total[targets][block.row] * context_smoothed[block.col]))
    keep = pmi > 0
    ppmi = sparse.csr_matrix((pmi[keep], (block.row[keep], block.col[keep])), shape=block.shape)
    occurring = np.asarray(ppmi.getnnz(axis=1)) > 0
    targets, ppmi = targets[occurring], ppmi[occurring]
    components = min(dim, len(targets) - 1, ppmi.shape[1] - 1)
    if len(targets) < 2 or components < 1:
        return {"rows_from_cooccurrence": 0, "rows_kept": new_total}
    left_vectors, singular_values, _ = randomized_svd(ppmi, n_components=components, random_state=seed)
    # U·√S (Levy & Goldberg's symmetric weighting: the strongest co-occurrence patterns dominate), centred and
    # scaled so that the average dimension has unit variance; mapped onto the old rows' per-dimension mean and
    # spread below. Dimensions beyond the SVD's rank get seeded unit noise, as in expand_vocabulary.
    vectors = left_vectors * np.sqrt(singular_values)
    vectors -= vectors.mean(axis=0)
    standard = vectors / max(float(np.sqrt((vectors ** 2).mean())), 1e-12)
    if components < dim:
        rng = np.random.default_rng(seed)
        standard = np.hstack([standard, rng.standard_normal((len(targets), dim - components))])
    with torch.no_grad():
        old = weight[:old_vocab_size].float()
        mean, std = old.mean(dim=0), old.std(dim=0)
        values = mean + scale * std * torch.from_numpy(standard).float().to(weight.device)
        weight[torch.from_numpy(targets).to(weight.device)] = values.to(weight.dtype)
    return {"rows_from_cooccurrence": int(len(targets)), "rows_kept": int(new_total - len(targets)),
            "svd_dimensions": int(components)}


def reads_as_one_token(tokenizer, term: str) -> bool:
    """Whether the tokenizer already reads ``term`` as one token of its own, so a new row would only duplicate it.

    A term that is a vocabulary entry as written is one token wherever it stands (BERT's ``cat``; a SentencePiece
    piece without its word-start mark, as a Chinese word reads inside running text). A word of a spaced script is
    also one token when the tokenizer reads it as one known token: uncased BERT's ``App`` is ``app``, and
    SentencePiece's ``blue`` is ``▁blue`` (XLM-RoBERTa, bge-m3). A Han term is not: one piece with the word-start
    mark covers it only at the start of a word, and Chinese runs words together.

    Example::

        reads_as_one_token(AutoTokenizer.from_pretrained("BAAI/bge-m3"), "blue")   # True: it reads "▁blue"
    """
    unk = tokenizer.unk_token_id
    if tokenizer.convert_tokens_to_ids(term) != unk:
        return True
    ids = tokenizer(term, add_special_tokens=False)["input_ids"]
    return len(ids) == 1 and ids[0] != unk and not any(is_han(ch) for ch in term)


def term_candidates(text: str, user_terms: tuple[str, ...] = ()) -> list[str]:
    """A text's jieba words of 2+ characters with a letter or digit; the user's terms kept whole."""
    jieba = _jieba_with(user_terms)
    return [w for w in jieba.cut(text) if len(w) >= 2 and any(ch.isalnum() for ch in w)]


@functools.lru_cache(maxsize=4)
def _jieba_with(user_terms: tuple[str, ...]):
    # Once per process (a worker of bgetune.parallel too). The user's terms go into a tokenizer of their own, not
    # jieba's global one, so that they change no other segmentation in the process (BM25's words, keywords).
    from bgetune.text import _jieba

    jieba = _jieba()
    if not user_terms:
        return jieba
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    for term in user_terms:
        tokenizer.add_word(term)
    return tokenizer


def domain_terms(tokenizer, texts: Sequence[str], top_n: int, min_count: int = 3,
                 user_terms: Sequence[str] = ()) -> list[str]:
    """Multi-character domain terms worth a token of their own: the user's terms first, then the corpus's jieba
    words (2+ characters) with the highest TF-IDF summed over the corpus, seen at least ``min_count`` times, that
    the tokenizer does not already hold as one token. Deterministic: ties by the term itself."""
    import math

    from bgetune.parallel import map_texts

    tf, df = Counter(), Counter()
    for words in map_texts(functools.partial(term_candidates, user_terms=tuple(user_terms)), list(texts),
                           "jieba terms of the passages"):
        tf.update(words)
        df.update(set(words))
    n = max(len(texts), 1)
    scored = sorted(((-(count * math.log((n + 1) / (df[w] + 0.5))), w) for w, count in tf.items()
                     if count >= min_count))
    chosen, seen = [], set()
    for term in list(user_terms) + [w for _, w in scored]:
        if term in seen or not term.strip():
            continue
        seen.add(term)
        if reads_as_one_token(tokenizer, term):
            continue
        chosen.append(term)
        if len(chosen) >= len(user_terms) + top_n:
            break
    return chosen


def read_terms(path: str) -> list[str]:
    """A user word list: one term per line, '#' comments and blank lines ignored."""
    from bgetune.records import read_text

    return [line.strip() for line in read_text(path).splitlines() if line.strip() and not line.startswith("#")]
