"""HTML pages: headings become section titles, the page's visible text its sections, its chrome left out."""
from bgetune.ingest import load_documents
from bgetune.ingest.html import declared_encoding, read_html_document
from bgetune.params import DataParams

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>高血压问答 - 某某医院</title>
<style>p { color: red }</style><script>var 广告 = "买药";</script></head>
<body>
<nav><ul><li>首页</li><li>科室介绍</li></ul></nav>
<article><header><h1>高血压问答</h1></header>
<p>高血压是常见的慢性病，
   需要长期管理。</p>
<h2>饮食 <small>建议</small></h2>
<p>低盐饮食，每天食盐不超过<b>5克</b>。</p>
<ul><li>多吃蔬菜</li><li>少喝酒</li></ul>
<h2>用药</h2>
<table><tr><th>药名</th><th>用法</th></tr><tr><td>硝苯地平</td><td>每日一次</td></tr></table>
<pre>剂量  早  晚
     5mg 5mg</pre>
<p>血压&lt;140/90 mmHg 为达标&nbsp;。<img src="x.png" alt="血压计"></p>
</article>
<footer>版权所有 © 某某医院</footer>
</body></html>"""


def test_headings_split_a_page_into_titled_sections_without_its_chrome(tmp_path):
    (tmp_path / "faq.html").write_text(PAGE, encoding="utf-8")
    document = read_html_document(tmp_path / "faq.html", "faq.html", None, DataParams())
    assert document.title == "高血压问答"   # the <h1>, not the <title> with the site's name
    assert [s.title for s in document.sections] == ["高血压问答", "饮食 建议", "用药"]
    first, diet, drugs = (s.text for s in document.sections)
    assert first == "高血压是常见的慢性病， 需要长期管理。"   # one paragraph, its source line break a space
    assert diet == "低盐饮食，每天食盐不超过5克。\n多吃蔬菜\n少喝酒"
    assert drugs.splitlines() == ["药名 用法", "硝苯地平 每日一次", "剂量  早  晚", "     5mg 5mg",
                                  "血压<140/90 mmHg 为达标 。血压计"]
    everything = document.title + "".join(s.text for s in document.sections)
    for chrome in ("首页", "买药", "color", "版权", "某某医院"):
        assert chrome not in everything


def test_broken_markup_still_reads_and_an_unclosed_heading_ends_where_its_text_does():
    from bgetune.ingest.html import _PageText

    page = _PageText()
    page.feed("<h2>第一节<p>正文一<h2><div>第二节</div>上<br>篇</h2><div>正文二<span>续")
    page.close()
    document = page.document("x", None)
    assert [(s.title, s.text) for s in document.sections] == [("第一节", "正文一"), ("第二节上 篇", "正文二续")]


def read_page(html: str):
    from bgetune.ingest.html import _PageText, content_scope

    page = _PageText(content_scope(html))
    page.feed(html)
    page.close()
    return page.document("x", None)


def test_only_the_main_content_is_read_where_the_page_marks_it_and_hidden_parts_never():
    html = """<html><head><title>冰箱常见问题</title></head><body>
    <div class="menu-bar"><h1 class="menu-title">某某家电帮助中心</h1><a>登录</a></div>
    <div id="help-popup"><h2>键盘快捷键</h2><p>按 S 搜索</p></div>
    <div role="main"><div class="content">
      <h2>冰箱不制冷</h2><p>检查电源<div hidden><div>内部备注</div>不公开</div>和温控旋钮。</p>
      <div aria-hidden="true">图标</div><ul role="menu"><li>分享</li></ul>
      <h2>结霜</h2><p>定期除霜
    </div></div>
    <aside role="complementary">相关文章</aside><p>页脚之后的推广</p>
    </body></html>"""
    document = read_page(html)
    assert document.title == "冰箱常见问题"   # no <h1> in the content: the page's <title>
    assert [(s.title, s.text) for s in document.sections] == [("冰箱不制冷", "检查电源和温控旋钮。"),
                                                              ("结霜", "定期除霜")]


def test_a_page_without_main_or_article_reads_its_whole_body():
    document = read_page("<body><nav>首页</nav><h2>简介</h2><p>正文。</p><footer>备案号</footer></body>")
    assert [(s.title, s.text) for s in document.sections] == [("简介", "正文。")] and document.title is None


def test_a_page_is_read_in_the_encoding_it_declares(tmp_path):
    page = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312"></head>' \
           "<body><h1>胃胀怎么办</h1><p>少食多餐。</p></body></html>"
    (tmp_path / "gbk.htm").write_bytes(page.encode("gbk"))
    assert declared_encoding(page.encode("gbk")) == "gb18030"
    documents, report = load_documents(tmp_path, DataParams())   # data.encoding utf-8: the page's own charset wins
    assert report["files"] == {"html": 1} and report["encodings"] == {"gbk.htm": "gb18030"}
    assert documents[0].sections[0].title == "胃胀怎么办" and documents[0].sections[0].text == "少食多餐。"
    assert declared_encoding(b"\xef\xbb\xbf<p>x</p>") == "utf-8" and declared_encoding(b"<p>x</p>") is None
    assert declared_encoding(b'<meta charset="x-no-such-codec">') is None   # unknown: data.encoding decides


def test_html_pages_in_sub_folders_take_the_folder_as_domain(tmp_path):
    (tmp_path / "心内科").mkdir()
    (tmp_path / "心内科" / "faq.html").write_text(PAGE, encoding="utf-8")
    documents, report = load_documents(tmp_path, DataParams())
    assert documents[0].domain == "心内科" and documents[0].doc_id == "心内科/faq.html"
    assert report["sections"] == 3 and report["skipped"] == {}
    from bgetune.corpus import build_corpus
    from bgetune.params import ChunkParams, QaGenParams, SplitParams
    from bgetune.querygen.heuristic import heuristic_pairs

    passages = build_corpus(documents, ChunkParams(), SplitParams(train=1, val=0, test=0), 0).passages
    assert [(p.title, p.domain) for p in passages] == [("高血压问答", "心内科"), ("饮食 建议", "心内科"),
                                                      ("用药", "心内科")]
    pairs, _ = heuristic_pairs(passages, [], QaGenParams(), seed=0)   # document structure: heading → its section
    assert {p.query: p.pos_ids for p in pairs if p.qid.startswith("title:")}["饮食 建议"] == [passages[1].id]
