import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bm25_tokens import (fuse_three, learned_weights, parse_setting, setting_label, setting_name,  # noqa: E402
                         three_way_grid)

from bgetune.params import LexicalParams  # noqa: E402


def test_settings_read_as_lexical_sections_with_the_defaults_filled_in():
    assert parse_setting("words:1.5:0.75") == {"tokens": "words", "k1": 1.5, "b": 0.75, "term_recall": None}
    assert parse_setting("cjk_bigrams") == {**LexicalParams().model_dump(), "term_recall": None}
    assert parse_setting("cjk_bigrams:0.9") == {"tokens": "cjk_bigrams", "k1": 0.9, "b": 0.75, "term_recall": None}
    assert setting_name(parse_setting("words:1.5:0.75")) == "words_k1_1.5_b_0.75"


def test_a_setting_may_weigh_its_query_terms_by_term_recall():
    weighted = parse_setting("cjk_bigrams:1.2:0.75:tr3")
    assert weighted == {"tokens": "cjk_bigrams", "k1": 1.2, "b": 0.75, "term_recall": 3.0}
    assert parse_setting("cjk_bigrams:1.2:0.75:tr")["term_recall"] == 5.0      # the stage's default smoothing
    assert setting_name(weighted) == "cjk_bigrams_k1_1.2_b_0.75_term_recall_3"
    assert setting_label(weighted) == "cjk_bigrams, 1.2, 0.75, term recall (smoothing 3)"
    with pytest.raises(SystemExit, match="tr<smoothing>"):
        parse_setting("cjk_bigrams:1.2:0.75:idf")


def test_learned_weights_are_the_evaluate_stages(tmp_path):
    from bgetune.lexical import term_recall_weights
    from bgetune.params import params_from_dict
    from bgetune.text import lexical_tokens

    (tmp_path / "data" / "pairs").mkdir(parents=True)
    passages = [{"id": "p1", "doc_id": "d1", "text": "感冒多喝水休息", "split": "train"},
                {"id": "p2", "doc_id": "d2", "text": "发烧吃退烧药", "split": "train"}]
    (tmp_path / "data" / "corpus.jsonl").write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in passages))
    pairs = [{"qid": "q1", "query": "医生感冒怎么办", "pos_ids": ["p1"], "source": "existing", "split": "train"},
             {"qid": "q2", "query": "医生发烧怎么办", "pos_ids": ["p2"], "source": "existing", "split": "train"}]
    (tmp_path / "data" / "pairs" / "train.jsonl").write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    params = params_from_dict({})
    assert learned_weights(tmp_path, params, parse_setting("words:1.5:0.75")) is None
    got = learned_weights(tmp_path, params, parse_setting("cjk_bigrams:1.2:0.75:tr2"))
    expected = term_recall_weights([(q["query"], p["text"]) for q, p in zip(pairs, passages)],
                                   lambda text: lexical_tokens(text, "cjk_bigrams"), 2.0)
    assert got == pytest.approx(expected) and got["医生"] < 1 < got["感冒"]


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
