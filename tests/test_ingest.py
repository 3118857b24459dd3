import json

import pytest

from bgetune.ingest import load_documents
from bgetune.params import DataParams
from bgetune.records import InputError


def squad(articles):
    return json.dumps({"data": articles}, ensure_ascii=False)


def test_squad_articles_become_documents_with_questions(tmp_path):
    (tmp_path / "qa.json").write_text(squad([{"title": "猫", "paragraphs": [
        {"context": "猫是一种动物。", "qas": [{"id": "q1", "question": "猫是什么？",
                                               "answers": [{"text": "动物", "answer_start": 4}]}]}]}]), encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["documents"] == 1 and report["questions"] == 1
    qa = documents[0].sections[0].qas[0]
    assert (qa.qid, qa.question, qa.answer_start) == ("q1", "猫是什么？", 4)


def test_squad_missing_context_names_file_and_record(tmp_path):
    (tmp_path / "qa.json").write_text(squad([{"title": "t", "paragraphs": [{"qas": []}]}]))
    with pytest.raises(InputError, match=r"qa.json: record data\[0\].paragraphs\[0\]: missing 'context'"):
        load_documents(tmp_path, DataParams())


def test_markdown_headings_become_section_titles_and_folders_domains(tmp_path):
    folder = tmp_path / "kitchen"
    folder.mkdir()
    (folder / "fridge.md").write_text("# 冰箱手册\n\n## 温度\n冷藏四度。\n\n## 除霜\n风冷自动除霜。\n", encoding="utf-8")
    documents, _ = load_documents(tmp_path, DataParams())
    doc = documents[0]
    assert doc.title == "冰箱手册" and doc.domain == "kitchen"
    assert [(s.title, s.text) for s in doc.sections] == [("温度", "冷藏四度。"), ("除霜", "风冷自动除霜。")]


def test_jsonl_missing_text_field_names_line(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "好"}\n{"body": "坏"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"a.jsonl: line 2: missing text field 'text'"):
        load_documents(tmp_path, DataParams())


def test_non_utf8_text_file_names_line_and_encoding_param_reads_it(tmp_path):
    (tmp_path / "doc.txt").write_bytes("第一行\n第二行\n".encode("gb18030"))
    with pytest.raises(InputError, match=r"doc.txt: line 1: not valid utf-8"):
        load_documents(tmp_path, DataParams())
    documents, _ = load_documents(tmp_path, DataParams(encoding="gb18030"))
    assert documents[0].sections[0].text == "第一行\n第二行"
    documents, _ = load_documents(tmp_path, DataParams(encoding="auto"))
    assert documents[0].sections[0].text == "第一行\n第二行"


def test_empty_corpus_is_an_error_and_skips_are_counted(tmp_path):
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match=r"no documents with text found.*'empty_document': 1.*'unsupported_extension': 1"):
        load_documents(tmp_path, DataParams())
    (tmp_path / "real.txt").write_text("内容。", encoding="utf-8")
    _, report = load_documents(tmp_path, DataParams())
    assert report["skipped"] == {"empty_document": 1, "unsupported_extension": 1}


def test_bom_is_accepted(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeff内容".encode("utf-8"))
    documents, _ = load_documents(tmp_path, DataParams())
    assert documents[0].sections[0].text == "内容"
