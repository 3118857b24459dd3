"""The out-of-domain ("general") set: read with the same readers as `split`, every passage a retrieval target.

Example::

    general = load_general_set(params.eval.general, seed=42)   # None when no raw_dir is set
    metrics = general_metrics(model, instruction, general, k_values=[10])    # {"ood_ndcg@10": ..., ...}
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from bgetune.records import InputError

log = logging.getLogger("bgetune")


@dataclass
class GeneralSet:
    texts: list[str]
    ids: list[str]
    queries: list[str]
    relevant: list[set[str]]
    source: str


def load_general_set(general_params, seed: int) -> GeneralSet | None:
    """The general set, chunked with the default chunk params (400 characters) whatever the domain's are, so its
    numbers compare across runs."""
    from bgetune.corpus import build_corpus
    from bgetune.ingest import load_documents
    from bgetune.params import ChunkParams, SplitParams

    raw = general_params.data.raw_dir
    if not raw:
        return None
    documents, _ = load_documents(raw, general_params.data)
    chunks = ChunkParams()
    result = build_corpus(documents, chunks, SplitParams(train=0.0, val=0.0, test=1.0), seed)
    pairs = [p for p in result.pairs if p.query.strip()]
    if not pairs:
        raise InputError(f"{raw}: the general set (eval.general.data.raw_dir) has no questions")
    asked = len(pairs)
    if len(pairs) > general_params.max_queries:
        pairs = random.Random(seed).sample(pairs, general_params.max_queries)
    passages = result.passages
    if general_params.max_passages and len(passages) > general_params.max_passages:
        needed = {i for p in pairs for i in p.pos_ids}
        others = [p for p in passages if p.id not in needed]
        room = max(general_params.max_passages - len(needed), 0)
        keep = needed | {p.id for p in random.Random(seed).sample(others, min(room, len(others)))}
        passages = [p for p in passages if p.id in keep]
    log.info("general set (eval.general): %d of %d questions over %d of %d passages from %s", len(pairs),
             asked, len(passages), len(result.passages), raw)
    return GeneralSet(texts=[p.text for p in passages], ids=[p.id for p in passages],
                      queries=[p.query for p in pairs], relevant=[set(p.pos_ids) for p in pairs], source=raw)


def general_metrics(model, instruction: str, general: GeneralSet, k_values: list[int], batch_size: int = 32,
                    progress: bool = False, device: str = "cpu", precision: str = "fp32",
                    windows: tuple[int, int] | None = None, window_weight: float = 1.0) -> dict:
    """Dense retrieval metrics on the general set (``windows``, ``window_weight``: small-to-big scoring, as
    ``eval.windows`` chose on the domain's val split)."""
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings

    ranked = dense_rankings(model, general.texts, general.ids, general.queries, max(max(k_values), 10),
                            instruction, batch_size, progress, device=device, precision=precision, windows=windows,
                            window_weight=window_weight)
    metrics = ranking_metrics(ranked.ids, general.relevant, k_values)
    out = {f"ood_{key}": value for key, value in metrics.items()}
    out["ood_queries"] = len(general.queries)
    return out


def general_bm25_metrics(general: GeneralSet, k_values: list[int], lexical) -> dict:
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import bm25_rankings

    rankings = bm25_rankings(general.texts, general.ids, general.queries, max(max(k_values), 10),
                             lexical=lexical)
    out = {f"ood_{key}": value for key, value in ranking_metrics(rankings, general.relevant, k_values).items()}
    out["ood_queries"] = len(general.queries)
    return out
