from bgetune.params import QaGenParams
from bgetune.querygen import existing_pairs, heuristic_pairs
from bgetune.records import Pair, Passage


def test_titles_and_key_sentences_become_training_pairs_only():
    passages = [
        Passage(id="a#0", doc_id="a", split="train", title="净水器滤芯",
                text="反渗透膜滤芯建议二十四个月更换。复合滤芯每年更换一次。"),
        Passage(id="a#1", doc_id="a", split="train", title="净水器滤芯", text="单句的段落没有可用的关键句子。"),
        Passage(id="b#0", doc_id="b", split="test", title="测试文档", text="测试集里的句子不应该变成查询。另一句。"),
    ]
    pairs, report = heuristic_pairs(passages, [], QaGenParams(), seed=0)
    titles = [p for p in pairs if p.qid.startswith("title:")]
    assert [(p.query, p.pos_ids) for p in titles] == [("净水器滤芯", ["a#0", "a#1"])]
    keys = [p for p in pairs if p.qid.startswith("key:")]
    assert len(keys) == 1 and keys[0].pos_ids == ["a#0"]
    assert keys[0].query in ("反渗透膜滤芯建议二十四个月更换", "复合滤芯每年更换一次")
    assert all(p.split == "train" for p in pairs)
    assert report == {"title": 1, "key_sentence": 1, "passage_without_key_sentence": 1}


def test_existing_keeps_alternative_wordings_in_their_splits_only_and_counts_the_rest():
    pairs = [Pair(qid=f"{split}{i}{kind}", query="" if (split, i, kind) == ("val", 0, "") else f"{split}问题{i}{kind}",
                  pos_ids=[f"p{i}"], source="existing_alt" if kind else "existing", split=split)
             for split in ("train", "val", "test") for i in range(2) for kind in ("", ":alt0")]
    kept, report = existing_pairs([], pairs, QaGenParams(), seed=0)
    assert [p.qid for p in kept] == ["train0", "train0:alt0", "train1", "train1:alt0", "val1", "test0", "test1"]
    assert report == {"kept": 5, "dropped_empty_query": 1, "alt_kept": 2, "alt_outside_splits": 4}
    everywhere = QaGenParams(existing={"alt_query_splits": ["train", "val", "test"]})
    kept, report = existing_pairs([], pairs, everywhere, seed=0)
    assert len(kept) == 11 and report["alt_kept"] == 6 and report["alt_outside_splits"] == 0
    _, plain = existing_pairs([], [p for p in pairs if p.source == "existing"], QaGenParams(), seed=0)
    assert plain == {"kept": 5, "dropped_empty_query": 1}   # no alternatives: the report as before
