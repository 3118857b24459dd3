"""Word .docx files: heading styles (by name, outline level or a style based on a heading) become section titles."""
import zipfile

import pytest

from bgetune.ingest import load_documents
from bgetune.ingest.docx import heading_levels, read_docx_document
from bgetune.params import DataParams
from bgetune.records import InputError

NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
# A Chinese Word template: heading styles have numeric ids; 要点 derives from heading 2; 正文 is body text.
STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles {NS}>
  <w:style w:type="paragraph" w:styleId="a"><w:name w:val="Normal"/></w:style>
  <w:style w:type="paragraph" w:styleId="a3"><w:name w:val="Title"/></w:style>
  <w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
  <w:style w:type="paragraph" w:styleId="2"><w:name w:val="heading 2"/></w:style>
  <w:style w:type="paragraph" w:styleId="key"><w:name w:val="要点"/><w:basedOn w:val="2"/></w:style>
  <w:style w:type="paragraph" w:styleId="outline"><w:name w:val="章"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
  <w:style w:type="paragraph" w:styleId="body"><w:name w:val="正文缩进"/><w:pPr><w:outlineLvl w:val="9"/></w:pPr>
  </w:style>
  <w:style w:type="paragraph" w:styleId="10"><w:name w:val="toc 1"/></w:style>
  <w:style w:type="character" w:styleId="c1"><w:name w:val="heading 1 Char"/></w:style>
</w:styles>"""


def paragraph(text, style=None, outline=None):
    properties = "".join([f'<w:pStyle w:val="{style}"/>' if style else "",
                          f'<w:outlineLvl w:val="{outline}"/>' if outline is not None else ""])
    return f"<w:p><w:pPr>{properties}</w:pPr><w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>"


BODY = "".join([
    paragraph("高血压防治指南", "a3"),
    # a table of contents: Word's block, and a line in a TOC style outside one
    '<w:sdt><w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
    '<w:sdtContent>' + paragraph("目录") + paragraph("诊断\t2", "10") + '</w:sdtContent></w:sdt>',
    paragraph("用药\t3", "10"),
    paragraph("本指南适用于基层医生。"),
    paragraph("诊断", "1"),
    '<w:p><w:r><w:t>诊室血压</w:t></w:r><w:r><w:tab/><w:t>≥140/90</w:t></w:r><w:r><w:br/><w:t>mmHg</w:t></w:r></w:p>',
    # a tracked change: the deletion is not the document's text, the insertion is
    '<w:p><w:r><w:t>复查</w:t></w:r><w:del><w:r><w:delText>一次</w:delText></w:r></w:del>'
    '<w:ins><w:r><w:t>两次</w:t></w:r></w:ins></w:p>',
    paragraph("用药", "key"),
    '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>药名</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>用法</w:t></w:r></w:p>'
    '</w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>硝苯地平</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>每日</w:t></w:r>'
    '</w:p><w:p><w:r><w:t>一次</w:t></w:r></w:p></w:tc></w:tr></w:tbl>',
    paragraph("随访", "outline"),
    '<w:sdt><w:sdtContent>' + paragraph("每三个月随访一次。") + '</w:sdtContent></w:sdt>',
    paragraph("附：正文样式不是标题", "body"),
    paragraph("附录", None, outline=1),
    paragraph("   "),
    paragraph("见卫健委文件。"),
])


def write_docx(path, body=BODY, styles=STYLES, parts=None):
    document = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {NS}><w:body>{body}' \
               '<w:sectPr/></w:body></w:document>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        for name, text in (parts or {"word/document.xml": document, "word/styles.xml": styles}).items():
            if text is not None:
                archive.writestr(name, text)
    return path


def test_heading_styles_by_name_outline_level_and_derivation():
    levels = heading_levels(STYLES.encode())
    assert levels == {"a3": 0, "1": 1, "2": 2, "key": 2, "outline": 3, "10": -1}


def test_a_word_document_reads_as_titled_sections_in_reading_order(tmp_path):
    from collections import Counter

    counts = Counter()
    document = read_docx_document(write_docx(tmp_path / "guide.docx"), "guide.docx", "指南", counts=counts)
    assert counts == {"docx_table_of_contents_lines": 3}
    assert document.title == "高血压防治指南" and document.domain == "指南"
    assert [(s.title, s.text) for s in document.sections] == [
        ("高血压防治指南", "本指南适用于基层医生。"),
        ("诊断", "诊室血压\t≥140/90\nmmHg\n复查两次"),
        ("用药", "药名 | 用法\n硝苯地平 | 每日 一次"),
        ("随访", "每三个月随访一次。\n附：正文样式不是标题"),
        ("附录", "见卫健委文件。"),
    ]


def test_without_styles_xml_english_style_ids_still_mark_headings(tmp_path):
    body = paragraph("Guide", "Title") + paragraph("Dosage", "Heading1") + paragraph("Twice a day.")
    path = tmp_path / "plain.docx"
    write_docx(path, parts={"word/document.xml": f'<w:document {NS}><w:body>{body}</w:body></w:document>'})
    document = read_docx_document(path, "plain.docx", None)
    assert document.title == "Guide" and [(s.title, s.text) for s in document.sections] == [("Dosage", "Twice a day.")]


def test_load_documents_reads_docx_beside_other_formats_and_refuses_broken_ones_by_name(tmp_path, monkeypatch):
    write_docx(tmp_path / "guide.docx")
    (tmp_path / "notes.md").write_text("# 笔记\n内容。", encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"docx": 1, "text": 1} and report["sections"] == 6
    assert report["noted"] == {"docx_table_of_contents_lines": 3}
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0 an old binary .doc renamed")
    with pytest.raises(InputError, match=r"old.docx: not a Word .docx file \(not a zip archive\)"):
        load_documents(tmp_path, DataParams())
    write_docx(tmp_path / "old.docx", parts={"word/styles.xml": STYLES})
    with pytest.raises(InputError, match=r"old.docx: not a Word .docx file \(no word/document.xml inside"):
        load_documents(tmp_path, DataParams())
    write_docx(tmp_path / "old.docx", parts={"word/document.xml": f"<w:document {NS}>\n<w:body><w:p></w:body>"})
    with pytest.raises(InputError, match=r"old.docx: word/document.xml: invalid XML: mismatched tag: line 2"):
        load_documents(tmp_path, DataParams())
    (tmp_path / "old.docx").unlink()
    import bgetune.ingest.docx as docx

    monkeypatch.setattr(docx, "MAX_PART_BYTES", 100)
    with pytest.raises(InputError, match=r"guide.docx: word/document.xml is 0 MiB uncompressed, over the 0 MiB"):
        load_documents(tmp_path, DataParams())
