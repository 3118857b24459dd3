"""params sections of merging and evaluation: merge, eval."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bgetune.params.inputs import DataParams
from bgetune.params.section import Section


# ----------------------------------------------------------------------------------------------------------- merge
class MergeModel(Section):
    path: str
    weight: float = Field(ge=0.0)


class MergeParams(Section):
    base: Literal["expanded", "original"] = "expanded"   # the base mixed in: vocabulary-expanded, or as shipped
    weights: list[float] = [0.5, 0.5]          # [base, fine-tuned]; used as is unless search is on
    models: list[MergeModel] = []              # more models to mix in (other runs, experiments), with weights
    search: Literal["off", "grid", "examples"] = "grid"
    grid: list[float] = [0.0, 0.25, 0.5, 0.75, 1.0]
    keep_in_domain: float = Field(0.98, ge=0.0, le=1.0)   # grid: keep this share of the fine-tuned val NDCG@10
    ood_tolerance: float = Field(0.02, ge=0.0)
    examples: int = Field(64, ge=1)            # search: examples — val queries the weights are fitted on
    example_temperature: float = Field(5.0, gt=0)   # weights = softmax(−loss / this), as LM-Cocktail
    search_max_passages: int = Field(5000, ge=10)

    @field_validator("search", mode="before")
    @classmethod
    def _off(cls, value):
        return "off" if value is False else value   # YAML reads a bare off as false

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: list[float]) -> list[float]:
        if not value or any(not 0.0 <= w <= 1.0 for w in value):
            raise ValueError("must be a non-empty list of fine-tuned weights in [0, 1]")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("must be two non-negative numbers [base, fine-tuned] with a positive sum")
        return value


# ------------------------------------------------------------------------------------------------------------ eval
class HybridParams(Section):
    enabled: bool = True
    # convex: a weighted sum of min-max normalised scores (won over rrf on meddialog and CMRC, docs/benchmarks.md);
    # rrf: reciprocal-rank fusion
    method: Literal["rrf", "convex"] = "convex"
    rrf_k: int = Field(60, ge=1)
    weights: list[float] = [1.0, 1.0]          # [dense, bm25]
    tune: bool = True                          # choose the weights on the val split

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("must be two non-negative numbers [dense, bm25] with a positive sum")
        return value


class WindowParams(Section):
    """Small-to-big: each passage longer than ``max_chars`` is also indexed as windows of whole sentences (each up
    to ``max_chars``, the next starting up to ``overlap_chars`` back). A passage scores (1 − weight) × its own
    vector's cosine + weight × its best vector's (itself or a window), so a question about one sentence of a long
    passage can find it; ``tune`` chooses the weight on val (0: one vector per passage, as without windows).
    ``max_chars`` 0: off."""
    max_chars: int = Field(80, ge=0)
    overlap_chars: int = Field(40, ge=0)
    weight: float = Field(1.0, ge=0.0, le=1.0)
    tune: bool = True

    @model_validator(mode="after")
    def _overlap(self):
        if self.max_chars and self.overlap_chars >= self.max_chars:
            raise ValueError(f"overlap_chars ({self.overlap_chars}) must be below max_chars ({self.max_chars})")
        return self


class GeneralSetParams(Section):
    data: DataParams = DataParams(raw_dir="")
    max_queries: int = Field(500, ge=1)
    max_passages: int = Field(0, ge=0)


class TermWeightParams(Section):
    """Query-term weights of the hybrid's BM25, learned from the train pairs (``bgetune.lexical.term_recall_weights``);
    the baseline BM25 stays unweighted."""
    # off | term_recall: each question term weighted by how often its training questions' answers contain it
    method: Literal["off", "term_recall"] = "term_recall"
    smoothing: float = Field(5.0, ge=0)        # pseudo-questions pulling a rare term's weight toward 1
    # The hybrid's val tuning also fuses plain BM25 and keeps the weights only where they win: kept by val on CMRC
    # (+0.005 NDCG@10, significant) and on one meddialog model of two, declined on the other (which they cost 0.003).
    tune: bool = True

    @field_validator("method", mode="before")
    @classmethod
    def _off(cls, value):
        return "off" if value is False else value   # YAML reads a bare off as false


class EvalParams(Section):
    k_values: list[int] = [1, 5, 10, 20, 100]
    level: Literal["passage", "document"] = "passage"   # the headline level; both are reported when documents span
    doc_score: Literal["max", "sum", "first"] = "max"   # several passages (a document's score from its passages)
    encode_batch_size: int = Field(32, gt=0)
    pair_negatives: int = Field(10, ge=1)
    noise_texts: str = ""
    hybrid: HybridParams = HybridParams()
    term_weights: TermWeightParams = TermWeightParams()
    windows: WindowParams = WindowParams()
    general: GeneralSetParams = GeneralSetParams()
    leakage: Literal["error", "warn"] = "error"
    extra_models: dict[str, str] = {}

    @field_validator("k_values")
    @classmethod
    def _k_values(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("must be a non-empty list of positive cut-offs, e.g. [1, 10, 100]")
        return sorted(set(value))
