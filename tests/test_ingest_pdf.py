"""PDF documents: bookmarks become section titles, wrapped lines rejoin, running headers and scans are counted."""
from collections import Counter

import pytest

from bgetune.ingest import load_documents
from bgetune.ingest.pdf import read_pdf_document, unwrap
from bgetune.params import DataParams
from bgetune.records import InputError


def write_pdf(path, pages, bookmarks=(), title=None, password=None):
    """A PDF whose pages hold ``pages``' lines (Chinese in Adobe's STSong-Light, a CJK font every reader knows),
    with ``bookmarks`` as (title, page index, parent bookmark index or None)."""
    from pypdf import PdfWriter
    from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject,
                               TextStringObject)

    writer = PdfWriter()
    system = DictionaryObject({NameObject("/Registry"): TextStringObject("Adobe"),
                               NameObject("/Ordering"): TextStringObject("GB1"),
                               NameObject("/Supplement"): NumberObject(4)})
    cid_font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/CIDFontType0"),
        NameObject("/BaseFont"): NameObject("/STSong-Light"), NameObject("/CIDSystemInfo"): system}))
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type0"),
        NameObject("/BaseFont"): NameObject("/STSong-Light"), NameObject("/Encoding"): NameObject("/UniGB-UCS2-H"),
        NameObject("/DescendantFonts"): ArrayObject([cid_font])}))
    for lines in pages:
        page = writer.add_blank_page(595, 842)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        operators = ["BT", "/F1 12 Tf", "14 TL", "50 780 Td"]
        operators += [f"<{line.encode('utf-16-be').hex()}> Tj T*" for line in lines]
        content = DecodedStreamObject()
        content.set_data("\n".join(operators + ["ET"]).encode())
        page[NameObject("/Contents")] = writer._add_object(content)
    made = []
    for name, page, parent in bookmarks:
        made.append(writer.add_outline_item(title=name, page_number=page,
                                            parent=made[parent] if parent is not None else None))
    if title:
        writer.add_metadata({"/Title": title})
    if password:
        writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    with open(path, "wb") as out:
        writer.write(out)
    return path


HEADER = "高血压基层诊疗指南（2024）"
PAGES = [
    [HEADER, "第一章 总则", "高血压是最常见的慢性病之一，患者需要长期", "管理血压并定期随访。", "- 1 -"],
    [HEADER, "第二章 诊断", "诊室血压连续三次超过一百四十毫米汞柱，可以", "诊断为高血压。",
     "Home readings at rest should be taken with the", "cuff at heart level.", "- 2 -"],
    [HEADER, "测量前休息五分钟，取坐位，袖带与心脏同高。", "- 3 -"],
    [],   # a scanned page: no text layer
]
# 诊断's page shows its number before its title; 血压测量's page does not show it.
BOOKMARKS = [("第一章 总则", 0, None), ("诊断", 1, None), ("2.1 血压测量", 2, 1)]


def test_bookmarks_title_sections_and_the_page_furniture_is_left_out(tmp_path):
    counts = Counter()
    path = write_pdf(tmp_path / "guide.pdf", PAGES, BOOKMARKS, title="Microsoft Word - 指南.docx")
    document = read_pdf_document(path, "guide.pdf", "指南", counts=counts)
    assert document.title is None and document.domain == "指南"   # an editor's file name is not a title
    assert [(s.title, s.text) for s in document.sections] == [
        ("第一章 总则", "高血压是最常见的慢性病之一，患者需要长期管理血压并定期随访。"),
        ("诊断", "诊室血压连续三次超过一百四十毫米汞柱，可以诊断为高血压。\n"
                       "Home readings at rest should be taken with the cuff at heart level."),
        ("2.1 血压测量", "测量前休息五分钟，取坐位，袖带与心脏同高。"),   # its title is not on its page: from its top
    ]
    assert counts == {"pdf_running_header_lines": 6, "pdf_pages_without_text": 1}


def test_without_bookmarks_a_pdf_is_one_section_and_a_real_metadata_title_is_kept(tmp_path):
    path = write_pdf(tmp_path / "note.pdf", [["第一行很长很长很长很长的内容，继续", "写到第二行。", "短句。"]],
                     title="随访记录")
    document = read_pdf_document(path, "note.pdf", None)
    assert document.title == "随访记录"
    assert [(s.title, s.text) for s in document.sections] == [(None, "第一行很长很长很长很长的内容，继续写到第二行。\n短句。")]


def test_unwrap_joins_only_full_lines_that_do_not_end_a_sentence():
    lines = ["第一章", "这一行写满了整整一行的宽度所以", "接着下一行。", "这一行也写满了宽度但已经结束。", "新段落",
             "structures and their man-", "agement, a line of its own", "short"]
    assert unwrap(lines, width=30) == ["第一章", "这一行写满了整整一行的宽度所以接着下一行。",
                                       "这一行也写满了宽度但已经结束。", "新段落",
                                       "structures and their management, a line of its own short"]


def test_load_documents_reads_pdfs_and_names_the_ones_it_cannot(tmp_path, caplog):
    write_pdf(tmp_path / "guide.pdf", PAGES, BOOKMARKS)
    documents, report = load_documents(tmp_path, DataParams())
    assert report["files"] == {"pdf": 1} and report["sections"] == 3
    assert report["noted"] == {"pdf_pages_without_text": 1, "pdf_running_header_lines": 6}
    assert "guide.pdf: 1 of 4 page(s) have no text layer (pages 4; a scan?)" in caplog.text
    write_pdf(tmp_path / "locked.pdf", [["机密"]], password="secret")
    with pytest.raises(InputError, match=r"locked.pdf: the PDF is password-protected"):
        load_documents(tmp_path, DataParams())
    (tmp_path / "locked.pdf").write_bytes(b"%PDF-1.7\n% cut off in the download")
    with pytest.raises(InputError, match=r"locked.pdf: not a readable PDF \("):
        load_documents(tmp_path, DataParams())
