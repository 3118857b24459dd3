import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bm25_tokens import fuse_three, parse_setting, setting_name, three_way_grid  # noqa: E402

from bgetune.params import LexicalParams  # noqa: E402


def test_settings_read_as_lexical_sections_with_the_defaults_filled_in():
    assert parse_setting("words:1.5:0.75") == {"tokens": "words", "k1": 1.5, "b": 0.75}
    assert parse_setting("cjk_bigrams") == LexicalParams().model_dump()
    assert parse_setting("cjk_bigrams:0.9") == {"tokens": "cjk_bigrams", "k1": 0.9, "b": 0.75}
    assert setting_name(parse_setting("words:1.5:0.75")) == "words_k1_1.5_b_0.75"


def test_the_three_way_grid_holds_every_triple_of_tenths_that_sums_to_one():
    grid = three_way_grid()
    assert len(grid) == 66 and len({tuple(w) for w in grid}) == 66
    assert all(sum(w) == pytest.approx(1.0) and min(w) >= 0 for w in grid)
    assert [0.0, 0.0, 1.0] in grid and [1.0, 0.0, 0.0] in grid and [0.2, 0.3, 0.5] in grid


def ranking(ids, scores):
    return SimpleNamespace(ids=[ids], scores=[scores])


def lexical(ids, scores):
    return SimpleNamespace(bm25=[ids], bm25_scores=[scores])


def test_three_lists_find_what_no_pair_does_and_the_weights_come_from_val():
    # Each list ranks its own decoy first and "r" second: r (0.6 in every list after min-max) beats every decoy
    # only when no list weighs more than 0.43 — no pair of lists can do it; the first such triple on the grid,
    # dense weight rising, is [0.2, 0.4, 0.4]. Val has it; the test query alone would want the dense list only.
    top = [1.0, 0.6, 0.3, 0.3, 0.0]
    val_dense = ranking(["d", "r", "a", "b", "z"], top)
    words, bigrams = lexical(["a", "r", "d", "b", "z"], top), lexical(["b", "r", "d", "a", "z"], top)
    test_dense = ranking(["t", "d", "r", "a", "z"], top)    # its relevant "t" is absent from both BM25 lists
    result = fuse_three({"test": test_dense, "val": val_dense}, {"test": [words, bigrams], "val": [words, bigrams]},
                        SimpleNamespace(relevant=[{"t"}]), SimpleNamespace(relevant=[{"r"}]), ["words", "cjk_bigrams"])
    assert result["weights"] == [0.2, 0.4, 0.4] and result["val_ndcg@10"] == pytest.approx(1.0)
    assert [t["weights"] for t in result["trials"]] == three_way_grid()
    assert max(t["val_ndcg@10"] for t in result["trials"] if 0.0 in t["weights"]) < 1.0   # no pair finds r first
    # on test, "t" (dense 1.0 × 0.2 = 0.2) falls behind a (0.58), r (0.54), b (0.52) and d (0.36): rank 5
    assert result["per_query"] == [pytest.approx(1 / math.log2(6))] and result["recall@10"] == 1.0
