"""Prompt templates for LLM query generation; ``{n}``, ``{passage}`` and ``{title}`` are filled per passage.

Both ask for varied styles (a keyword query, a natural question, a paraphrase of a need), one per line, because
retrieval users type all three and a model trained on one style only learns that style.
"""

SYSTEM = {
    "zh": "你是一名帮助构建检索训练数据的助手。只输出查询本身，每行一个，不要解释。",
    "en": "You help build training data for a search engine. Output only the queries, one per line, no explanations.",
}

TEMPLATES = {
    "zh": (
        "下面是一段文档内容{title_line}。请写出 {n} 个用户可能用来搜索到这段内容的中文查询，风格要多样："
        "至少一个关键词式查询（几个词，不成句），至少一个自然提问（完整问句），其余为换一种说法描述需求。"
        "查询只能用这段内容能回答的信息，不要照抄原句。\n\n"
        "内容：\n{passage}\n\n"
        "按如下格式输出，每行一个查询：\n1. ...\n2. ..."
    ),
    "en": (
        "Here is a passage{title_line}. Write {n} search queries a user might type to find it, in varied styles: "
        "at least one keyword query (a few words, not a sentence), at least one natural question, and the rest "
        "paraphrases of the need. Only ask what the passage answers; do not copy its sentences.\n\n"
        "Passage:\n{passage}\n\n"
        "Answer in this format, one query per line:\n1. ...\n2. ..."
    ),
}

TITLE_LINE = {"zh": "（标题：{title}）", "en": " (title: {title})"}


def render(template: str, language: str, passage: str, title: str | None, n: int) -> str:
    title_line = TITLE_LINE.get(language, TITLE_LINE["en"]).format(title=title) if title else ""
    return template.format(n=n, passage=passage, title=title or "", title_line=title_line)
