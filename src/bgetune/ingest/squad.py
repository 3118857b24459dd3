"""SQuAD-format JSON (CMRC 2018, DuReader-style): each article a document, each context a section with questions."""
from __future__ import annotations

from pathlib import Path

from bgetune.ingest.document import QA, Document, RecordPolicy, Section, decode_file
from bgetune.records import InputError


def read_squad(path: Path, relative: str, data_params, policy: RecordPolicy | None = None, root=None) -> list[Document]:
    import json

    policy = policy or RecordPolicy()

    if root is None:
        text = decode_file(path, data_params.encoding, policy)
        try:
            root = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: line {err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise InputError(f"{path}: not SQuAD format (expected a top-level object with a 'data' list)")
    documents = []
    for a, article in enumerate(root["data"]):
        where = f"{path}: record data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            policy.bad(where, "missing 'paragraphs' list", "squad_missing_paragraphs")
            continue
        title = article.get("title")
        sections = []
        for p, paragraph in enumerate(article["paragraphs"]):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                policy.bad(f"{where}.paragraphs[{p}]", "missing 'context'", "squad_missing_context")
                continue
            qas = []
            for q, qa in enumerate(paragraph.get("qas", [])):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    policy.bad(f"{where}.paragraphs[{p}].qas[{q}]", "missing 'question'", "squad_missing_question")
                    continue
                answers = qa.get("answers") or []
                first = answers[0] if answers and isinstance(answers[0], dict) else {}
                start = first.get("answer_start")
                qas.append(QA(qid=str(qa.get("id", f"{relative}:{a}:{p}:{q}")), question=qa["question"].strip(),
                              answer_text=first.get("text"), answer_start=start if isinstance(start, int) else None))
            sections.append(Section(text=context, title=title, qas=qas))
        doc_id = f"{relative}:{article.get('id', a)}"
        documents.append(Document(doc_id=doc_id, title=title, domain=article.get("domain"), sections=sections))
    return documents
