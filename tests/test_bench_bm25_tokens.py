import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bm25_tokens import (choice_pairs, fuse_three, learned_weights, parse_setting, setting_label,  # noqa: E402
                         setting_name, three_way_grid, val_choice)

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


def test_each_weighted_setting_is_paired_with_its_plain_setting_when_listed():
    parsed = [parse_setting(s) for s in ("words:1.5:0.75", "cjk_bigrams:1.2:0.75", "cjk_bigrams:1.2:0.75:tr5",
                                         "words:1.2:0.75:tr3", "cjk_bigrams:1.2:0.75:tr1")]
    assert choice_pairs(parsed) == [(1, 2), (1, 4)]     # words at k1 1.2 has no plain setting listed


def test_the_val_choice_fuses_test_with_the_bm25_and_weight_val_chose():
    # Val: the plain BM25 ranks a decoy first, the weighted one the answer: val keeps the weighted BM25 (BM25 alone,
    # dense weight 0). Test is then ranked by the weighted BM25 — here it has the test answer first, the plain
    # BM25 does not have it at all.
    top = [1.0, 0.8, 0.0]
    dense = {"val": ranking(["d", "r", "x"], [0.9, 0.8, 0.1]), "test": ranking(["a", "t", "b"], top)}
    splits = {"val": [lexical(["d", "x"], [5.0, 1.0]), lexical(["r", "d"], [5.0, 1.0])],
              "test": [lexical(["a", "b"], [5.0, 1.0]), lexical(["t", "a"], [5.0, 1.0])]}
    choice = val_choice(dense, splits, SimpleNamespace(relevant=[{"t"}]), SimpleNamespace(relevant=[{"r"}]), 0, 1,
                        "cjk_tr5")
    assert choice["chosen"] == "term_weighted" and choice["dense_weight"] == 0.0
    assert choice["term_weighted_val_ndcg@10"] == 1.0 and choice["plain_val_ndcg@10"] < 1
    assert choice["ndcg@10"] == 1.0 and choice["per_query"] == [1.0] and choice["setting"] == "cjk_tr5_or_plain_on_val"
    # Both BM25s alike on val: the tie keeps plain, and test is fused with the plain one (t at rank 2 by dense).
    splits["val"][0] = splits["val"][1]
    choice = val_choice(dense, splits, SimpleNamespace(relevant=[{"t"}]), SimpleNamespace(relevant=[{"r"}]), 0, 1,
                        "cjk_tr5")
    assert choice["chosen"] == "plain" and choice["ndcg@10"] < 1
