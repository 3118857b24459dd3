from collections import Counter

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


def test_alternative_questions_leave_the_split_alone_and_never_twin_a_question_of_another_split():
    def corpus(with_alternatives):
        documents = []
        for i in range(30):
            # main questions unlike each other (3 characters of their own), so documents split freely
            question = "".join(chr(0x4E00 + 3 * i + k) for k in range(3)) + "怎么办"
            qas = [QA(qid=f"q{i}", question=question)]
            if with_alternatives:
                # d0's alternative repeats d1's question; every document's other alternative is its own wording
                other = question.replace(chr(0x4E00), chr(0x4E03)).replace(chr(0x4E01), chr(0x4E04)).replace(
                    chr(0x4E02), chr(0x4E05)) if i == 0 else "".join(chr(0x5000 + 4 * i + k) for k in range(4)) + "的说法"
                qas += [QA(qid=f"q{i}:alt0", question=other, alternative=True),
                        QA(qid=f"q{i}:alt1", question=f"编号{i}：头晕眼花{i}", alternative=True)]
            documents.append(Document(doc_id=f"d{i}", sections=[Section(text=f"第{i}篇回答的内容各不相同。", qas=qas)]))
        return build_corpus(documents, ChunkParams(max_chars=50),
                            SplitParams(train=0.5, val=0.2, test=0.3, group_by="query_similarity"), seed)

    for seed in range(4):
        plain, alt = corpus(False), corpus(True)
        assert alt.assignment == plain.assignment   # alternatives never move a document
        assert [p for p in alt.pairs if p.source == "existing"] == plain.pairs
        assert len(set(alt.assignment.values())) == 3
        twin_dropped = alt.assignment["d0"] != alt.assignment["d1"]
        alternatives = {p.qid: p for p in alt.pairs if p.source == "existing_alt"}
        assert ("q0:alt0" not in alternatives) == twin_dropped
        # near-identical wordings across splits (编号i：头晕眼花i differ in two characters) are twins too
        near = [f"q{i}:alt1" for i in range(30) if f"q{i}:alt1" not in alternatives]
        assert near
        assert alt.report["alt_queries_dropped_as_twins"] == twin_dropped + len(near)
        assert len(alternatives) == 60 - alt.report["alt_queries_dropped_as_twins"]
        assert all(p.split == alt.assignment[p.qid.split(":")[0].replace("q", "d")] for p in alternatives.values())
        assert alt.report["alt_query_pairs_per_split"] == dict(Counter(p.split for p in alternatives.values()))


def test_title_prefix_starts_each_passage_with_its_section_or_document_title_after_chunking():
    from bgetune.ingest import QA, Document, Section

    documents = [Document(doc_id="guide", title="冰箱手册", sections=[
        Section(text="冰箱需要每月除霜。先断电。", title="除霜", qas=[QA(qid="q", question="多久除霜", answer_text="每月",
                                                                   answer_start=4)]),
        Section(text="除霜后擦干。", title=None),            # no heading: the document's title
        Section(text="清洁\n用温水擦拭。", title="清洁")]),  # already starts with its heading
        Document(doc_id="note", title=None, sections=[Section(text="无标题的笔记。")])]
    split = SplitParams(train=1, val=0, test=0)
    plain = build_corpus(documents, ChunkParams(max_chars=10, min_chars=0), split, seed=0)
    titled = build_corpus(documents, ChunkParams(max_chars=10, min_chars=0, title_prefix=True), split, seed=0)
    assert [p.id for p in titled.passages] == [p.id for p in plain.passages]   # chunked as without titles
    assert [p.text for p in titled.passages] == ["除霜\n冰箱需要每月除霜。", "除霜\n先断电。", "冰箱手册\n除霜后擦干。",
                                                 "清洁\n用温水擦拭。", "无标题的笔记。"]
    assert [(p.query, p.pos_ids) for p in titled.pairs] == [(p.query, p.pos_ids) for p in plain.pairs] == \
        [("多久除霜", ["guide#0"])]   # answers still map by the section's own offsets
    assert (titled.report["title_prefixed"], titled.report["title_prefix_not_needed"]) == (3, 2)
    assert "title_prefixed" not in plain.report
