"""The QA file llama-index's ``generate_qa_embedding_pairs`` writes (``EmbeddingQAFinetuneDataset.save_json``):
``{"queries": {qid: text}, "corpus": {node_id: text}, "relevant_docs": {qid: [node_id, ...]}, "mode": "text"}``.

Each corpus node is a document; each query a question on its first relevant node, the others relevant too.

Example::

    documents = read_llamaindex(path, "train_dataset.json", root_object, policy, counts)
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bgetune.ingest.document import QA, Document, RecordPolicy, Section


def looks_like_llamaindex(root) -> bool:
    return isinstance(root, dict) and {"queries", "corpus", "relevant_docs"} <= set(root)


def read_llamaindex(path: Path, relative: str, root: dict, policy: RecordPolicy, counts: Counter) -> list[Document]:
    queries, corpus, relevant = root.get("queries"), root.get("corpus"), root.get("relevant_docs")
    if not all(isinstance(x, dict) for x in (queries, corpus, relevant)):
        policy.bad(str(path), "'queries', 'corpus' and 'relevant_docs' must be objects", "llamaindex_bad_file")
        return []
    documents = {}
    for node_id, text in corpus.items():
        if not isinstance(text, str):
            policy.bad(f"{path}: corpus[{node_id!r}]", "expected a text", "llamaindex_bad_node")
            continue
        documents[node_id] = Document(doc_id=f"{relative}:{node_id}", sections=[Section(text=text.strip())])
    for qid, text in queries.items():
        nodes = relevant.get(qid)
        if not isinstance(text, str) or not isinstance(nodes, list):
            policy.bad(f"{path}: queries[{qid!r}]", "a query needs a text and a list in relevant_docs",
                       "llamaindex_bad_query")
            continue
        known = [n for n in nodes if n in documents]
        if len(known) < len(nodes):
            policy.bad(f"{path}: relevant_docs[{qid!r}]", f"names nodes not in the corpus: "
                                                          f"{[n for n in nodes if n not in documents][:3]}",
                       "llamaindex_unknown_node")
        if not known:
            counts["query_without_relevant_node"] += 1
            continue
        documents[known[0]].sections[0].qas.append(QA(qid=f"{relative}:{qid}", question=text.strip(),
                                                      extra_pos_docs=[documents[n].doc_id for n in known[1:]]))
    return list(documents.values())
