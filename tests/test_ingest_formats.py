"""Every input format users bring, including broken files: a clear error naming file and row/line, or a counted skip."""
import json

import pandas as pd
import pytest

from bgetune.corpus import build_corpus
from bgetune.ingest import load_documents
from bgetune.params import ChunkParams, DataParams, SplitParams
from bgetune.records import InputError

MED = DataParams(encoding="auto", qa_columns={"query": ["title"], "answer": "answer", "domain": "department"})
ROWS = [("内科", "高血压吃什么药", "血压高", "可以服用硝苯地平，注意低盐饮食。"),
        ("消化科", "胃胀怎么办", "饭后胃胀", "少食多餐，可以吃些助消化的药物。")]


def write_csv(path, rows, encoding, header=("department", "title", "ask", "answer")):
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8", "gbk"])
def test_csv_qa_table_in_chinese_encodings_carries_the_domain(tmp_path, encoding):
    write_csv(tmp_path / "med.csv", ROWS, encoding)
    documents, report = load_documents(tmp_path, MED)
    assert report["files"] == {"qa_table": 1} and report["questions"] == 2
    first = documents[0]
    assert first.domain == "内科" and first.sections[0].text == ROWS[0][3]
    assert first.sections[0].qas[0].question == "高血压吃什么药"


def test_several_query_columns_are_joined(tmp_path):
    write_csv(tmp_path / "med.csv", ROWS, "utf-8")
    params = MED.model_copy(update={"qa_columns": MED.qa_columns.model_copy(update={"query": ["title", "ask"]})})
    documents, _ = load_documents(tmp_path, params)
    assert documents[1].sections[0].qas[0].question == "胃胀怎么办\n饭后胃胀"


def test_alt_query_columns_give_one_alternative_question_per_line(tmp_path):
    rows = [("内科", "高血压吃什么药", "血压一直高\n头晕", "可以服用硝苯地平，注意低盐饮食。"),
            ("消化科", "胃胀怎么办", "", "少食多餐，可以吃些助消化的药物。")]
    path = tmp_path / "med.csv"
    pd.DataFrame(rows, columns=["department", "title", "ask", "answer"]).to_csv(path, index=False)
    params = MED.model_copy(update={"qa_columns": MED.qa_columns.model_copy(update={"alt_queries": ["ask"]})})
    documents, report = load_documents(tmp_path, params)
    first, second = (d.sections[0].qas for d in documents)
    assert [(q.question, q.alternative) for q in first] == [("高血压吃什么药", False), ("血压一直高", True),
                                                           ("头晕", True)]
    assert [q.qid.rsplit(":", 1)[1] for q in first] == ["q", "alt0", "alt1"]
    assert [(q.question, q.alternative) for q in second] == [("胃胀怎么办", False)]   # an empty cell adds nothing
    missing = MED.model_copy(update={"qa_columns": MED.qa_columns.model_copy(update={"alt_queries": ["similar"]})})
    with pytest.raises(InputError, match=r"med.csv: column\(s\) \['similar'\] not found"):
        load_documents(tmp_path, missing)


def test_gb18030_file_read_as_utf8_names_the_line(tmp_path):
    write_csv(tmp_path / "med.csv", ROWS, "gb18030")
    with pytest.raises(InputError, match=r"med.csv: line 2: not valid utf-8"):
        load_documents(tmp_path, DataParams(qa_columns=MED.qa_columns))


def test_missing_column_lists_the_columns_the_file_has(tmp_path):
    write_csv(tmp_path / "med.csv", ROWS, "utf-8")
    with pytest.raises(InputError, match=r"med.csv: column\(s\) \['question'\] not found; the file has \['department'"):
        load_documents(tmp_path, DataParams(qa_columns={"answer": "answer"}))


def test_empty_answer_is_an_error_naming_the_row_or_a_counted_skip(tmp_path):
    write_csv(tmp_path / "med.csv", ROWS + [("内科", "头晕", "", "")], "utf-8")
    with pytest.raises(InputError, match=r"med.csv: row 4: empty answer column 'answer'"):
        load_documents(tmp_path, MED)
    documents, report = load_documents(tmp_path, MED.model_copy(update={"on_bad_record": "skip"}))
    assert len(documents) == 2 and report["skipped"]["empty_answer"] == 1


def test_malformed_csv_line_is_an_error_or_a_counted_skip(tmp_path):
    (tmp_path / "med.csv").write_text("department,title,ask,answer\n内科,a,b,c\n内科,a,b,c,extra,more\n内科,d,e,f\n",
                                      encoding="utf-8")
    with pytest.raises(InputError, match=r"med.csv: malformed CSV"):
        load_documents(tmp_path, MED)
    documents, report = load_documents(tmp_path, MED.model_copy(update={"on_bad_record": "skip"}))
    assert len(documents) == 2 and report["skipped"]["malformed_csv_line"] == 1


def test_empty_file_is_an_error(tmp_path):
    (tmp_path / "med.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match=r"med.csv: empty file"):
        load_documents(tmp_path, MED)


def test_row_without_question_is_kept_as_a_passage_and_counted(tmp_path):
    write_csv(tmp_path / "med.csv", ROWS + [("内科", "", "", "多喝水。")], "utf-8")
    documents, report = load_documents(tmp_path, MED)
    assert len(documents) == 3 and report["questions"] == 2 and report["noted"]["row_without_question"] == 1


def test_xlsx_sheet_reads_like_csv(tmp_path):
    frame = pd.DataFrame(ROWS, columns=["department", "title", "ask", "answer"])
    frame.to_excel(tmp_path / "med.xlsx", index=False)
    documents, report = load_documents(tmp_path, MED)
    assert report["files"] == {"qa_table": 1}
    assert [d.sections[0].qas[0].question for d in documents] == ["高血压吃什么药", "胃胀怎么办"]


def test_a_sheet_the_workbook_lacks_is_an_error_naming_the_param(tmp_path):
    pd.DataFrame(ROWS, columns=["department", "title", "ask", "answer"]).to_excel(tmp_path / "med.xlsx", index=False)
    for sheet, message in ((3, "Worksheet index 3 is invalid"), ("病历", "Worksheet named '病历' not found")):
        with pytest.raises(InputError, match=rf"med.xlsx: cannot read workbook: {message}.* \(data.sheet: "
                                             rf"{sheet!r}\)$"):
            load_documents(tmp_path, MED.model_copy(update={"sheet": sheet}))


def test_broken_xlsx_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "med.xlsx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"med.xlsx: cannot read workbook"):
        load_documents(tmp_path, MED)


def test_json_list_and_jsonl_rows_are_qa_tables(tmp_path):
    rows = [dict(zip(("department", "title", "ask", "answer"), r)) for r in ROWS]
    (tmp_path / "a.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    documents, report = load_documents(tmp_path, MED)
    assert report["files"] == {"qa_table": 2} and report["questions"] == 4
    assert {d.doc_id for d in documents} == {"a.json:[0]", "a.json:[1]", "b.jsonl:1", "b.jsonl:2"}


def test_jsonl_bad_line_is_an_error_or_a_counted_skip(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "好的文本"}\n{broken\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"a.jsonl: line 2: invalid JSON"):
        load_documents(tmp_path, DataParams())
    documents, report = load_documents(tmp_path, DataParams(on_bad_record="skip"))
    assert len(documents) == 1 and report["skipped"] == {"invalid_json": 1}


def test_article_metadata_with_text_files_beside_it(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a1.txt").write_text("正文一。", encoding="utf-8")
    (tmp_path / "meta.jsonl").write_text(
        '{"id": "a1", "title": "第一篇", "domain": "家电", "file": "texts/a1.txt"}\n'
        '{"id": "a2", "title": "第二篇", "file": "texts/missing.txt"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"meta.jsonl: line 2: text file 'texts/missing.txt' not found"):
        load_documents(tmp_path, DataParams())
    documents, report = load_documents(tmp_path, DataParams(on_bad_record="skip"))
    # The text file is read through its record (title, domain), not a second time as a document of its own.
    assert [(d.doc_id, d.title, d.domain, d.sections[0].text) for d in documents] == [
        ("meta.jsonl:a1", "第一篇", "家电", "正文一。")]
    assert report["skipped"] == {"text_file_missing": 1}


def write_beir(folder):
    folder.mkdir()
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "冰箱", "text": "冰箱冷藏室四度。"}\n{"_id": "d2", "text": "洗衣机每月清洁。"}\n'
        '{"_id": "d3", "text": "空调滤网两周一洗。"}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "冷藏几度"}\n{"_id": "q2", "text": "家电多久清洁"}\n{"_id": "q3", "text": "无答案"}\n',
        encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq2\td3\t1\n"
                                               "q1\td3\t0\n", encoding="utf-8")


def test_beir_folder_maps_qrels_to_positives(tmp_path):
    write_beir(tmp_path / "bench")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"beir": 1} and report["documents"] == 3
    assert report["noted"] == {"qrels_not_relevant": 1, "query_without_relevant_document": 1}
    result = build_corpus(documents, ChunkParams(), SplitParams(train=1, val=0, test=0), 0)
    assert {p.qid: p.pos_ids for p in result.pairs} == {"bench:q1": ["bench:d1#0"],
                                                         "bench:q2": ["bench:d2#0", "bench:d3#0"]}


def test_beir_qrel_with_unknown_document_names_the_line(tmp_path):
    write_beir(tmp_path / "bench")
    with open(tmp_path / "bench" / "qrels" / "test.tsv", "a", encoding="utf-8") as handle:
        handle.write("q1\tnope\t1\n")
    with pytest.raises(InputError, match=r"test.tsv: line 6: unknown document id 'nope'"):
        load_documents(tmp_path, DataParams())


def test_flagembedding_jsonl_is_used_as_is_with_given_negatives(tmp_path):
    lines = [{"query": "冷藏几度", "pos": ["冰箱冷藏室四度。"], "neg": ["洗衣机每月清洁。", "冰箱冷藏室四度。"]},
             {"query": "洗衣机怎么清洁", "pos": ["洗衣机每月清洁。"], "neg": []},
             {"query": "", "pos": ["空的"], "neg": []}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines),
                                          encoding="utf-8")
    with pytest.raises(InputError, match=r"train.jsonl: line 3: missing or empty 'query'"):
        load_documents(tmp_path, DataParams())
    documents, report = load_documents(tmp_path, DataParams(on_bad_record="skip"))
    assert report["files"] == {"flagembedding": 1} and report["documents"] == 2
    assert report["noted"]["given_negative_equal_to_a_positive"] == 1
    result = build_corpus(documents, ChunkParams(), SplitParams(train=1, val=0, test=0), 0)
    pairs = {p.query: p for p in result.pairs}
    assert pairs["冷藏几度"].pos_ids == ["train.jsonl:p0#0"] and pairs["冷藏几度"].neg_ids == ["train.jsonl:p1#0"]
    assert pairs["洗衣机怎么清洁"].pos_ids == ["train.jsonl:p1#0"]


def test_duplicate_passages_merge_and_keep_one_split(tmp_path):
    from bgetune.ingest import QA, Document, Section
    docs = [Document(doc_id=f"d{i}", sections=[Section(text=text, qas=[QA(qid=f"q{i}", question=f"问题{i}")])])
            for i, text in enumerate(["多喝水，注意休息。", "多喝水 注意休息", "按时服药，定期复查血压。",
                                      "按时服药，定期复查血压！！", "完全不同的一段内容在这里。"])]
    result = build_corpus(docs, ChunkParams(dedup="exact"), SplitParams(train=0.4, val=0.2, test=0.4), 3)
    assert len(result.passages) == 3
    assert result.report["duplicates"]["merged_exact"] == 2
    splits = result.assignment
    assert splits["d0"] == splits["d1"] and splits["d2"] == splits["d3"]
    positives = {p.qid: p.pos_ids for p in result.pairs}
    assert positives["q1"] == ["d0#0"] and positives["q3"] == ["d2#0"]
    near = build_corpus(docs, ChunkParams(dedup="near", near_threshold=0.5), SplitParams(train=1, val=0, test=0), 3)
    assert near.report["duplicates"]["passages_after"] <= 3
    off = build_corpus(docs, ChunkParams(dedup="off"), SplitParams(train=1, val=0, test=0), 3)
    assert len(off.passages) == 5


def test_query_similarity_split_keeps_near_identical_questions_together():
    from bgetune.ingest import QA, Document, Section
    questions = ["高血压吃什么药好", "高血压吃什么药好呢", "胃胀怎么办", "胃胀怎么办啊", "头痛失眠", "咳嗽有痰",
                 "糖尿病饮食", "心慌胸闷", "腰疼怎么回事", "过敏性鼻炎"]
    docs = [Document(doc_id=f"d{i}", sections=[Section(text=f"第{i}个不同的回答内容。",
                                                       qas=[QA(qid=f"q{i}", question=q)])])
            for i, q in enumerate(questions)]
    for seed in range(10):
        result = build_corpus(docs, ChunkParams(), SplitParams(train=0.5, val=0.2, test=0.3,
                                                               group_by="query_similarity"), seed)
        assert result.assignment["d0"] == result.assignment["d1"]
        assert result.assignment["d2"] == result.assignment["d3"]
    assert result.report["split_groups"]["similar_question_pairs"] == 2


def test_token_chunks_fit_the_tokenizer_and_overlap_by_whole_sentences(tiny_model_dir):
    from transformers import AutoTokenizer

    from bgetune.chunking import chunk_spans, token_measure
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    measure = token_measure(tokenizer)
    text = "".join(f"第{i}句话在这里。" for i in range(12))
    spans = chunk_spans(text, 20, 0, overlap=9, measure=measure)   # every sentence is 8-9 tokens
    chunks = [text[s:e] for s, e in spans]
    assert len(chunks) > 2 and all(measure(c) <= 20 for c in chunks)
    for before, after in zip(chunks, chunks[1:]):
        last_sentence = before[before[:-1].rfind("。") + 1:]
        assert after.startswith(last_sentence)     # the previous chunk's last sentence is repeated
    assert chunks[0].startswith("第0句") and chunks[-1].endswith("第11句话在这里。")


def test_mldr_jsonl_gz_as_downloaded_gives_long_documents_with_given_negatives(tmp_path):
    """MLDR / Tevatron lines as the dataset ships them, gzipped: long documents, their positives and negatives."""
    import gzip

    long_text = "".join(f"这是第{i}段很长的文档内容，讲述了第{i}件事情。" for i in range(60))
    lines = [{"query_id": "q-zh-1", "query": "文档讲了什么", "positive_passages": [
                 {"docid": "doc-zh-1", "title": "", "text": long_text}],
              "negative_passages": [{"docid": "doc-zh-2", "title": "", "text": "无关的文档。" * 10}]},
             {"query_id": "q-zh-2", "query": "无关的文档", "positive_passages": [
                 {"docid": "doc-zh-2", "title": "", "text": "无关的文档。" * 10}], "negative_passages": []}]
    with gzip.open(tmp_path / "dev.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"mldr": 1} and report["documents"] == 2 and report["questions"] == 2
    first = next(d for d in documents if d.doc_id.endswith("doc-zh-1"))
    qa = first.sections[0].qas[0]
    assert qa.question == "文档讲了什么" and qa.neg_docs == ["dev.jsonl.gz:doc-zh-2"]
    result = build_corpus(documents, ChunkParams(max_chars=200), SplitParams(train=0.0, val=0.0, test=1.0), 0)
    pair = next(p for p in result.pairs if p.qid.endswith("q-zh-1"))
    assert len(pair.pos_ids) > 5          # a long document spans many passages: document-level eval counts it once


def test_broken_gzip_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "dev.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match=r"dev.jsonl.gz: not a valid gzip file"):
        load_documents(tmp_path, DataParams())


def test_json_list_of_articles_naming_text_files_beside_it(tmp_path):
    texts = tmp_path / "article_texts"
    texts.mkdir()
    (texts / "a1.txt").write_text("第一篇文章的正文。", encoding="utf-8")
    (texts / "a2.txt").write_text("第二篇文章的正文。", encoding="utf-8")
    (tmp_path / "articles.json").write_text(json.dumps(
        [{"id": "a1", "title": "第一篇", "file": "article_texts/a1.txt", "domain": "news"},
         {"id": "a2", "title": "第二篇", "file": "article_texts/a2.txt"}], ensure_ascii=False), encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"articles": 1}                         # the texts are not documents of their own
    assert sorted((d.doc_id, d.title, d.sections[0].text) for d in documents) == [
        ("articles.json:a1", "第一篇", "第一篇文章的正文。"), ("articles.json:a2", "第二篇", "第二篇文章的正文。")]


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "link.txt"])
def test_a_text_file_outside_raw_dir_is_refused(tmp_path, name):
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    (raw / "link.txt").symlink_to(tmp_path / "secret.txt")
    (raw / "articles.jsonl").write_text(json.dumps({"id": "x", "file": name}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"articles.jsonl: line 1: .*outside data.raw_dir"):
        load_documents(raw, DataParams())


def test_a_link_in_raw_dir_that_leads_out_is_refused(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    (raw / "notes.txt").write_text("内容。", encoding="utf-8")
    (raw / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InputError, match=r"link.txt is outside data.raw_dir"):
        load_documents(raw, DataParams())


def test_llama_index_qa_json_as_generate_qa_embedding_pairs_saves_it(tmp_path):
    """EmbeddingQAFinetuneDataset.save_json: json.dump(model.dict(), indent=4) — ASCII-escaped Unicode."""
    dataset = {"queries": {"q1": "空调怎么清洗？", "q2": "冰箱温度多少合适？"},
               "corpus": {"node-1": "拆下滤网，用清水冲洗后晾干。", "node-2": "冷藏室建议四度。"},
               "relevant_docs": {"q1": ["node-1"], "q2": ["node-2"]}, "mode": "text"}
    (tmp_path / "train_dataset.json").write_text(json.dumps(dataset, indent=4))
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"llamaindex": 1} and report["questions"] == 2
    by_id = {d.doc_id: d for d in documents}
    assert by_id["train_dataset.json:node-1"].sections[0].qas[0].question == "空调怎么清洗？"


def test_legacy_xls_reads_like_xlsx(tmp_path):
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("qa")
    for r, row in enumerate([["question", "answer"], ["空调怎么清洗", "拆下滤网用清水冲洗。"]]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(tmp_path / "faq.xls"))
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"qa_table": 1}
    assert documents[0].sections[0].text == "拆下滤网用清水冲洗。"
    assert documents[0].sections[0].qas[0].question == "空调怎么清洗"


@pytest.mark.parametrize("encoding, text", [("big5", "繁體中文的內容，用於檢測編碼。\n醫生建議病人多休息。\n"),
                                            ("gb18030", "高血压患者的饮食应该注意什么？\n少盐少油。\n")])
def test_auto_detects_chinese_encodings_and_records_them(tmp_path, encoding, text):
    (tmp_path / "doc.txt").write_bytes(text.encode(encoding))
    documents, report = load_documents(tmp_path, DataParams(encoding="auto"))
    assert documents[0].sections[0].text == text.strip() and report["encodings"] == {"doc.txt": encoding}


def test_a_file_that_turns_non_utf8_names_the_right_line(tmp_path):
    (tmp_path / "doc.txt").write_bytes("一\n二\n三\n四\n".encode() + "五".encode("gb18030") + b"\n")
    with pytest.raises(InputError, match=r"doc.txt: line 5: not valid utf-8"):
        load_documents(tmp_path, DataParams())


def test_article_records_may_name_markdown_html_word_and_pdf_files_read_by_their_own_readers(tmp_path):
    from test_ingest_docx import write_docx
    from test_ingest_pdf import BOOKMARKS, PAGES, write_pdf

    files = tmp_path / "files"
    files.mkdir()
    (files / "a.md").write_text("# 冰箱\n## 除霜\n每月一次。", encoding="utf-8")
    (files / "b.html").write_text("<main><h2>洗衣机</h2><p>清洁滤网。</p></main>", encoding="utf-8")
    write_docx(files / "c.docx")
    write_pdf(files / "d.pdf", PAGES, BOOKMARKS)
    (tmp_path / "manifest.jsonl").write_text("".join(
        json.dumps({"id": name[0], "file": f"files/{name}", "domain": "家电", **({"title": "手册"} if name == "d.pdf"
                                                                               else {})}, ensure_ascii=False) + "\n"
        for name in ("a.md", "b.html", "c.docx", "d.pdf")), encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"articles": 1}   # each file read once, through its record
    assert report["noted"] == {"docx_table_of_contents_lines": 3, "pdf_pages_without_text": 1,
                               "pdf_running_header_lines": 6}   # the files' own counts too
    by_id = {d.doc_id: d for d in documents}
    assert [(s.title, s.text) for s in by_id["manifest.jsonl:a"].sections] == [("除霜", "每月一次。")]
    assert [(s.title, s.text) for s in by_id["manifest.jsonl:b"].sections] == [("洗衣机", "清洁滤网。")]
    assert by_id["manifest.jsonl:c"].title == "高血压防治指南" and len(by_id["manifest.jsonl:c"].sections) == 5
    assert by_id["manifest.jsonl:d"].title == "手册"   # the record's title over the file's
    assert [s.title for s in by_id["manifest.jsonl:d"].sections] == ["第一章 总则", "诊断", "2.1 血压测量"]
    assert {d.domain for d in documents} == {"家电"}


def test_a_gzipped_txt_is_plain_text_not_markdown(tmp_path):
    import gzip

    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress("# 不是标题\n正文。".encode("utf-8")))
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"text": 1}
    assert [(s.title, s.text) for s in documents[0].sections] == [(None, "# 不是标题\n正文。")]
