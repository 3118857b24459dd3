from bgetune.params import QaGenParams
from bgetune.querygen import heuristic_pairs
from bgetune.records import Passage


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
