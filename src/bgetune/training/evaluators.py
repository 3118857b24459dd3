"""Evaluators the Trainer runs every ``train.eval_every`` steps, as objects it already knows how to call.

- ``val_retrieval_evaluator``: sentence-transformers' InformationRetrievalEvaluator on the val queries over their
  positives plus a seeded sample of the corpus (NDCG@10, Recall@10, MRR@10, MAP@10), queries encoded with the
  evaluation instruction at the query length, passages at the passage length;
- ``NoiseEvaluator``: how similar val queries look to unrelated chit-chat (mean cosine; lower is better), for
  recipes that select the checkpoint by it (``train.select_by: noise_similarity``).

``metric_key(select_by)`` names the Trainer metric that picks the best checkpoint.

Example::

    evaluator = SequentialEvaluator([val_retrieval_evaluator(pool, val_pairs, instruction),
                                     NoiseEvaluator(val_queries, noise_texts, instruction)])
"""
from __future__ import annotations

import numpy as np
from sentence_transformers.base.evaluation import BaseEvaluator

NAME = "val"


def val_retrieval_evaluator(pool, val_pairs, instruction: str, batch_size: int = 32):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    return InformationRetrievalEvaluator(
        queries={p.qid: p.query for p in val_pairs}, corpus={p.id: p.text for p in pool},
        relevant_docs={p.qid: set(p.pos_ids) for p in val_pairs}, name=NAME, query_prompt=instruction or None,
        accuracy_at_k=[1], precision_recall_at_k=[10], mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10],
        batch_size=batch_size, show_progress_bar=False, write_csv=False,
        score_functions={"cosine": cos_sim}, main_score_function="cosine")


class NoiseEvaluator(BaseEvaluator):
    """Mean and 95th-percentile cosine of val queries to unrelated texts; the mean is the primary metric."""

    def __init__(self, queries: list[str], noise_texts: list[str], instruction: str = "", batch_size: int = 32):
        super().__init__()
        self.queries, self.noise_texts, self.instruction = queries, noise_texts, instruction
        self.batch_size = batch_size
        self.greater_is_better = False
        self.primary_metric = "noise_similarity_mean"

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict:
        from bgetune.search import encode

        q = encode(model, self.queries, self.batch_size, self.instruction, progress=False, kind="query")
        n = encode(model, self.noise_texts, self.batch_size, progress=False, kind="document")
        sims = q @ n.T
        metrics = {"noise_similarity_mean": float(sims.mean()),
                   "noise_similarity_p95": float(np.percentile(sims, 95))}
        return self.prefix_name_to_metrics(metrics, NAME)


def metric_key(select_by: str) -> tuple[str, bool]:
    """(Trainer metric name, greater is better) for ``train.select_by``."""
    if select_by == "noise_similarity":
        return f"eval_{NAME}_noise_similarity_mean", False
    return f"eval_{NAME}_cosine_{select_by}", True
