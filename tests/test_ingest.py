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
    documents, report = load_documents(tmp_path, DataParams(encoding="auto"))
    assert documents[0].sections[0].text == "第一行\n第二行" and report["encodings"] == {"doc.txt": "gb18030"}


def test_unsupported_files_are_named_with_the_formats_that_are_supported(tmp_path, caplog):
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    (tmp_path / "notes.doc").write_bytes(b"PK")
    with pytest.raises(InputError, match=r"no documents bgetune can read: 2 file\(s\) of an unsupported type "
                                         r"\(notes.doc, slides.pptx\); supported: .txt, .md, .html, .docx, .pdf, "
                                         r"\.json"):
        load_documents(tmp_path, DataParams())
    (tmp_path / "real.txt").write_text("内容。", encoding="utf-8")
    (tmp_path / "LICENCE").write_text("CC BY-SA 4.0", encoding="utf-8")
    _, report = load_documents(tmp_path, DataParams())
    assert report["skipped"] == {"unsupported_file": 3}
    assert report["unsupported_files"] == ["LICENCE", "notes.doc", "slides.pptx"]          # named, not silent
    assert "skipping 3 file(s) of a type bgetune cannot read (LICENCE, notes.doc, slides.pptx)" in caplog.text


def test_documents_without_letters_are_skipped_and_counted_not_turned_into_queries(tmp_path):
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "emoji.txt").write_text("😀🎉👍 ！！", encoding="utf-8")
    with pytest.raises(InputError, match=r"no documents with text found.*'no_text': 2"):
        load_documents(tmp_path, DataParams())
    (tmp_path / "real.txt").write_text("内容。", encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["skipped"] == {"no_text": 2} and documents[0].title is None   # a file name is not a title


def test_bom_is_accepted(tmp_path):
    (tmp_path / "bom.txt").write_bytes("\ufeff内容".encode("utf-8"))
    documents, _ = load_documents(tmp_path, DataParams())
    assert documents[0].sections[0].text == "内容"
