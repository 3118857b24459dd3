import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from passage_windows import bm25_with_windows  # noqa: E402

from bgetune.params import LexicalParams  # noqa: E402


def test_bm25_over_windows_ranks_a_passage_by_its_best_entry():
    # Passage 0 is long: its last sentence alone matches the query better than the whole passage does.
    texts = ["冰箱冷藏室温度设置为四度。洗衣机每月自洁一次。空调滤网每两周清洗一次。热水器每年除垢一次。",
             "空调清洗滤网", "电视遥控器没电了"]
    order, scores = bm25_with_windows(texts, ["热水器除垢"], 14, 0, k=3, lexical=LexicalParams())
    assert order[0][0] == 0 and scores[0] == sorted(scores[0], reverse=True)
    assert len(order[0]) == len(set(order[0]))        # each passage once, however many windows matched
