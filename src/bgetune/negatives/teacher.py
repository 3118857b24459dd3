"""Teacher scores for distillation: ``pos_scores`` / ``neg_scores`` of each training example, from ``mining.teacher``.

- ``""``: the scoring model's cosines (what ``mine`` already wrote);
- a model folder or hub id: a cross-encoder (a reranker: a sequence-classification model) scores each
  (query, passage) pair — its scores are logits, which ``train.distill_temperature: auto`` reads at 1 — or a
  bi-encoder scores them by cosine (read like the student's, at ``train.temperature``);
- ``hybrid``: where no reranker exists, the scoring model's cosine averaged with BM25's score mapped onto the
  query's cosine range, so a passage both retrievers rank high is the teacher's favourite;
- ``bm25``: BM25's score alone, mapped onto the same range — the hybrid without its dense half, for data where the
  scoring model (an untrained, vocabulary-expanded base) is near random and BM25 is strong.

Example::

    report = teacher_scores(examples, passages, params.mining, params.model, "cuda", "bf16", scorer, instruction)
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from bgetune.params.modelling import LEXICAL_TEACHERS

log = logging.getLogger("bgetune")


def is_cross_encoder(reference: str) -> bool:
    """Whether the teacher is a cross-encoder (a reranker: one logit per query-passage pair), by the architecture
    its config.json names; a hub model whose config can be neither fetched nor found in the cache is judged by its
    name (``BAAI/bge-reranker-v2-m3``, ``cross-encoder/…``)."""
    from bgetune.models import is_hub_id, resolve_model_path

    if is_hub_id(reference):
        architectures = hub_architectures(reference)
        if architectures is None:
            name = reference.lower()
            return "rerank" in name or name.startswith("cross-encoder/")
    else:
        try:
            config = json.loads((Path(resolve_model_path(reference)) / "config.json").read_text())
            architectures = config.get("architectures") or []
        except (OSError, ValueError):
            return False
    return any(a.endswith("ForSequenceClassification") for a in architectures)


def hub_architectures(reference: str) -> list[str] | None:
    """The architectures a hub model's config.json names (fetched, or from the cache offline); None if neither."""
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(reference, "config.json")).read_text()).get("architectures") or []
    except Exception:   # no network, no cache, a gated or missing repo: the caller falls back to the name
        return None


def distill_temperature(train_params, teacher: str) -> tuple[float, str]:
    """The temperature the distillation reads ``teacher``'s scores at, and why: ``train.distill_temperature``
    when set; ``auto``: 1 for a cross-encoder's logits (FlagEmbedding softmaxes a reranker's scores as they are),
    ``train.temperature`` for cosines (the scoring model, a bi-encoder, hybrid and bm25 on the cosine range), so
    teacher and student read cosines alike.

    Example::

        temperature, why = distill_temperature(params.train, params.mining.teacher)   # 1.0, "cross-encoder logits"
    """
    if train_params.distill_temperature != "auto":
        return float(train_params.distill_temperature), "train.distill_temperature"
    if teacher and teacher not in LEXICAL_TEACHERS and is_cross_encoder(teacher):
        return 1.0, "auto: the teacher is a cross-encoder, its scores are logits"
    return float(train_params.temperature), "auto: the teacher's scores are cosines, read like the student's"


def teacher_scores(examples, passages, mining_params, model_params, device: str, precision: str, scorer_model,
                   scorer_instruction: str, progress: bool = False) -> dict:
    teacher = mining_params.teacher
    texts_of = {p.id: p.text for p in passages}
    if teacher in LEXICAL_TEACHERS:
        from bgetune.lexical import BM25Index

        index = BM25Index([p.text for p in passages], mining_params.bm25.lexical())
        position = {p.id: i for i, p in enumerate(passages)}
        unscored = 0
        for example in examples:
            ids = example.pos_ids + example.neg_ids
            if example.pos_scores is None or not ids:
                unscored += 1   # no cosines to take the range from: the loss skips groups without teacher scores
                continue
            cosines = np.asarray(example.pos_scores + example.neg_scores)
            bm25 = np.asarray(index.scores(example.query, [position[i] for i in ids]))
            scores = hybrid_scores(cosines, bm25) if teacher == "hybrid" else bm25_on_cosine_range(cosines, bm25)
            example.pos_scores = [round(float(s), 6) for s in scores[:len(example.pos_ids)]]
            example.neg_scores = [round(float(s), 6) for s in scores[len(example.pos_ids):]]
        kind = ("cosine + BM25 mapped onto the cosine range" if teacher == "hybrid"
                else "BM25 mapped onto the cosine range")
        log.info("teacher scores from %s (%s) for %d of %d groups", teacher, kind, len(examples) - unscored,
                 len(examples))
        return {"teacher": teacher, "kind": kind, "bm25": index.lexical.model_dump(), "groups": len(examples),
                "groups_without_scores": unscored}
    from bgetune.models import load_model, query_instruction_for

    if is_cross_encoder(teacher):
        import torch
        from sentence_transformers import CrossEncoder

        from bgetune.search import precision_context

        model = CrossEncoder(teacher, device=device, trust_remote_code=model_params.trust_remote_code)
        pairs = [(e.query, texts_of.get(i, t)) for e in examples
                 for i, t in zip(e.pos_ids + e.neg_ids, e.pos + e.neg)]
        # Identity: the raw logits, as FlagEmbedding's rerankers give them to distillation; sentence-transformers
        # would squash a one-logit model through a sigmoid, which flattens the teacher's distribution.
        with precision_context(device, precision):
            scores = model.predict(pairs, batch_size=mining_params.encode_batch_size, show_progress_bar=progress,
                                   activation_fn=torch.nn.Identity(), convert_to_numpy=True).tolist()
        kind = "cross-encoder logits (distilled at temperature 1 with train.distill_temperature: auto)"
    else:
        from bgetune.search import encode

        model = load_model(teacher, device, model_params.query_max_length, model_params.passage_max_length,
                           model_params.pooling, model_params.trust_remote_code, key="mining.teacher")
        instruction = query_instruction_for(teacher, model_params.query_instruction)
        queries = encode(model, [e.query for e in examples], mining_params.encode_batch_size, instruction, progress,
                         kind="query", precision=precision)
        # Each passage once, in full batches (groups share passages, and a batch of one group's 8 texts leaves a
        # GPU idle); the corpus's text by id, as the cross-encoder reads it.
        group_texts = [[texts_of.get(i, t) for i, t in zip(e.pos_ids + e.neg_ids, e.pos + e.neg)] for e in examples]
        unique = list(dict.fromkeys(t for texts in group_texts for t in texts))
        vectors = encode(model, unique, mining_params.encode_batch_size, progress=progress, kind="document",
                         precision=precision)
        row = {t: n for n, t in enumerate(unique)}
        scores = [float(vectors[row[t]] @ queries[q]) for q, texts in enumerate(group_texts) for t in texts]
        kind = "bi-encoder cosines"
    cursor = 0
    for e in examples:
        n_pos, n_neg = len(e.pos), len(e.neg)
        e.pos_scores = [round(float(s), 6) for s in scores[cursor:cursor + n_pos]]
        e.neg_scores = [round(float(s), 6) for s in scores[cursor + n_pos:cursor + n_pos + n_neg]]
        cursor += n_pos + n_neg
    log.info("teacher scores from %s (%s)", teacher, kind)
    return {"teacher": teacher, "kind": kind}


def bm25_on_cosine_range(cosines: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """BM25's scores linearly mapped onto [min cosine, max cosine] of the group (all at the middle when BM25 ties).

    Why the cosine range: the teacher is read at ``train.distill_temperature`` like a cosine, so its scores need a
    cosine's scale whatever BM25's (unbounded, query-length dependent) scale is.
    """
    low, high = float(cosines.min()), float(cosines.max())
    span = float(lexical.max() - lexical.min())
    if span <= 0:
        return np.full_like(cosines, (low + high) / 2)
    return low + (lexical - lexical.min()) / span * (high - low)


def hybrid_scores(cosines: np.ndarray, lexical: np.ndarray) -> np.ndarray:
    """Mean of the cosine and the BM25 score mapped onto the group's cosine range."""
    return (cosines + bm25_on_cosine_range(cosines, lexical)) / 2
