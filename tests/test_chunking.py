from bgetune.chunking import chunk_spans, sentence_spans, split_sentences


def test_sentences_end_at_chinese_and_english_punctuation():
    text = "第一句。第二句！第三句？“引号里。”第五句；Last one. And more"
    assert split_sentences(text) == ["第一句。", "第二句！", "第三句？", "“引号里。”", "第五句；", "Last one.", "And more"]


def test_newlines_end_sentences_and_offsets_index_the_text():
    text = "  标题\n正文第一句。正文第二句"
    for start, end in sentence_spans(text):
        assert text[start:end].strip() == text[start:end]
    assert split_sentences(text) == ["标题", "正文第一句。", "正文第二句"]


def test_chunks_keep_sentences_whole_and_respect_max_chars():
    text = "甲" * 5 + "。" + "乙" * 5 + "。" + "丙" * 5 + "。"
    spans = chunk_spans(text, 12)
    assert [text[s:e] for s, e in spans] == ["甲甲甲甲甲。乙乙乙乙乙。", "丙丙丙丙丙。"]


def test_overlong_sentence_is_cut_and_no_text_is_lost():
    text = "长" * 25 + "。短句。"
    spans = chunk_spans(text, 10)
    assert all(e - s <= 10 for s, e in spans)
    assert "".join(text[s:e] for s, e in spans) == text


def test_short_tail_joins_previous_chunk():
    text = "这是一个足够长的句子。好。"
    assert [text[s:e] for s, e in chunk_spans(text, 11, 3)] == [text]


def test_a_paragraph_that_fits_one_chunk_is_not_split_across_two():
    first = "第一段第一句。第一段第二句。"          # 14 characters
    second = "第二段第一句。第二段第二句。"         # 14 characters
    text = first + "\n" + second
    # Greedy packing would put the second paragraph's first sentence beside the first paragraph (21 <= 22).
    assert [text[s:e] for s, e in chunk_spans(text, 22)] == [first, second]
    # Without a line break the two are one paragraph: sentences pack greedily.
    joined = first + second
    assert [joined[s:e] for s, e in chunk_spans(joined, 22)] == [first + "第二段第一句。", "第二段第二句。"]
