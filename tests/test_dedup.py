"""Duplicate detection: exact groups, and the prefix-filtered near-duplicate search finding exactly the pairs that
comparing every text with every other finds."""
import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from bgetune.dedup import duplicate_groups, normalise, similar_pairs


def all_pairs(texts: list[str], threshold: float, ngram: int) -> list[tuple[int, int]]:
    """Every pair's cosine of binary character n-gram sets, computed from integer overlaps (the definition)."""
    grams = CountVectorizer(analyzer="char", ngram_range=(ngram, ngram), binary=True,
                            lowercase=False).fit_transform(texts).toarray().astype(np.int64)
    overlap, sizes = grams @ grams.T, grams.sum(axis=1)
    return [(a, b) for a in range(len(texts)) for b in range(a + 1, len(texts))
            if sizes[a] and sizes[b] and overlap[a, b] / np.sqrt(sizes[a] * sizes[b]) >= threshold - 1e-6]


def noisy_copies(seed: int) -> list[str]:
    """Random strings over a small alphabet, each with a copy that lost a tail and gained a character, and texts
    shorter than an n-gram: many pairs near every threshold."""
    rng = random.Random(seed)
    alphabet = "甲乙丙丁戊己庚辛壬癸"[: rng.randint(3, 10)]
    originals = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(30)]
    copies = [text[: len(text) - rng.randint(0, 3)] + rng.choice(alphabet) for text in originals]
    return originals + copies + ["", "甲", "甲乙"]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.3, 0.7, 0.9, 1.0])
@pytest.mark.parametrize("ngram", [1, 2, 3])
def test_similar_pairs_are_exactly_the_all_pairs_answer(seed, threshold, ngram):
    texts = noisy_copies(seed)
    expected = all_pairs(texts, threshold, ngram)
    # a small block: several blocks, pairs across block boundaries
    found = similar_pairs(texts, threshold, ngram=ngram, block=7)
    assert sorted(found) == expected
    assert len(found) == len(set(found))   # each pair once, a < b
    assert all(a < b for a, b in found)


def test_similar_pairs_at_the_thresholds_edge():
    # sets of 4 and 5 bigrams sharing 4: cosine 4 / sqrt(20) = 0.894
    shorter, longer = "abcde", "abcdef"
    assert similar_pairs([shorter, longer], 0.894) == [(0, 1)]
    assert similar_pairs([shorter, longer], 0.895) == []
    assert similar_pairs(["a", "b"], 0.5) == []   # no text as long as one n-gram


def test_duplicate_groups_join_exact_and_near_copies_under_their_first_member():
    texts = ["高血压怎么办？", "胃胀怎么办", "高血压 怎么办", "？！", "胃胀怎么办呢", "头痛"]
    assert duplicate_groups(texts) == [0, 1, 0, 3, 4, 5]
    # 胃胀怎么办 / 胃胀怎么办呢: 4 of 5 bigrams shared, cosine 0.894
    assert duplicate_groups(texts, near_threshold=0.85) == [0, 1, 0, 3, 1, 5]
    assert duplicate_groups(texts, near_threshold=0.9) == [0, 1, 0, 3, 4, 5]


def test_normalise_ignores_width_case_space_and_punctuation():
    assert normalise("ＡＢＣ 高血压，怎么办？") == normalise("abc高血压怎么办") == "abc高血压怎么办"
