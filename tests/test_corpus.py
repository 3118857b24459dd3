from bgetune.corpus import assign_splits, build_corpus
from bgetune.ingest import QA, Document, Section
from bgetune.params import ChunkParams, SplitParams


def docs(n):
    return [Document(doc_id=f"d{i}", title=f"文档{i}", sections=[Section(text=f"第{i}篇第一句。第{i}篇的第二句话。")])
            for i in range(n)]


def test_whole_documents_go_to_one_split_by_seeded_ratios():
    split = SplitParams(train=0.6, val=0.2, test=0.2)
    result = build_corpus(docs(10), ChunkParams(max_chars=8, min_chars=0), split, seed=7)
    by_doc = {}
    for p in result.passages:
        by_doc.setdefault(p.doc_id, set()).add(p.split)
    assert all(len(s) == 1 for s in by_doc.values())
    assert sorted(result.assignment.values()).count("train") == 6
    assert build_corpus(docs(10), ChunkParams(max_chars=8, min_chars=0), split, seed=7).assignment == result.assignment
    assert build_corpus(docs(10), ChunkParams(max_chars=8, min_chars=0), split, seed=8).assignment != result.assignment


def test_every_positive_split_gets_a_document_when_possible():
    assignment = assign_splits(["a", "b", "c"], {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    assert sorted(assignment.values()) == ["test", "train", "val"]


def test_question_maps_to_the_chunk_holding_its_answer():
    text = "甲甲甲甲甲。乙乙乙乙乙。丙丙丙丙丙。"
    doc = Document(doc_id="d", sections=[Section(text=text, qas=[
        QA(qid="q1", question="乙？", answer_text="乙乙", answer_start=text.index("乙")),
        QA(qid="q2", question="丙？", answer_text="丙丙丙"),
        QA(qid="q3", question="全文？")])])
    result = build_corpus([doc], ChunkParams(max_chars=6, min_chars=0), SplitParams(train=1, val=0, test=0), 0)
    assert [p.text for p in result.passages] == ["甲甲甲甲甲。", "乙乙乙乙乙。", "丙丙丙丙丙。"]
    assert {p.qid: p.pos_ids for p in result.pairs} == {"q1": ["d#1"], "q2": ["d#2"], "q3": ["d#0", "d#1", "d#2"]}


def test_identical_questions_in_different_documents_share_a_split():
    docs = [Document(doc_id=f"d{i}", sections=[Section(text=f"第{i}篇的内容不同。", qas=[
        QA(qid=f"q{i}", question="雅芳河的发源地是哪里？" if i in (1, 6) else f"问题{i}")])]) for i in range(10)]
    for seed in range(8):
        result = build_corpus(docs, ChunkParams(max_chars=50), SplitParams(train=0.5, val=0.2, test=0.3), seed)
        assert result.assignment["d1"] == result.assignment["d6"]
