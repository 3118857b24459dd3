"""The one typed schema of params.yaml, and the only place its defaults live.

Every stage starts with ``load_params()``; an unknown key, a wrong type, a ratio outside [0, 1] or a model folder
that does not exist stops the stage with an error naming the key, before any work is done.

Example::

    from bgetune.params import load_params
    params = load_params("params.yaml")
    params.train.temperature      # 0.02
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Ratio = Field(ge=0.0, le=1.0)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataParams(Section):
    raw_dir: str = "data/raw"
    encoding: str = "utf-8"  # any Python codec (utf-8 accepts a BOM); "auto": utf-8, else gb18030
    text_field: str = "text"
    title_field: str = "title"
    domain_field: str = "domain"
    id_field: str = "id"


class ChunkParams(Section):
    max_chars: int = Field(400, ge=2)
    min_chars: int = Field(10, ge=0)


class SplitParams(Section):
    train: float = Ratio
    val: float = Ratio
    test: float = Ratio

    @model_validator(mode="after")
    def _sum_to_one(self):
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.train + split.val + split.test must be 1.0, got {total:.4f}")
        return self


class HeuristicParams(Section):
    title_queries: bool = True
    key_sentence_queries: bool = True
    key_sentences_per_passage: int = Field(1, ge=0)
    splits: list[Literal["train", "val", "test"]] = ["train"]


class QaGenParams(Section):
    sources: list[Literal["existing", "heuristic"]] = ["existing", "heuristic"]
    heuristic: HeuristicParams = HeuristicParams()


class ModelParams(Section):
    base: str = "bundled:all-MiniLM-L6-v2"
    query_instruction: str = "auto"  # "auto": BGE's instruction for bge-*-v1.5 models, none for others
    max_seq_length: int = Field(128, gt=8)
    pooling: Literal["auto", "cls", "mean"] = "auto"  # only for folders without modules.json; auto: CLS for BGE
    trust_remote_code: bool = False

    @field_validator("base")
    @classmethod
    def _base_exists(cls, value: str) -> str:
        from bgetune.models import check_model_reference

        check_model_reference(value)
        return value


class VocabParams(Section):
    expand_chars: bool = True
    min_char_count: int = Field(1, ge=1)
    init_noise: float = Field(0.1, ge=0.0)  # new rows: mean embedding + noise * per-dimension std


STRATEGIES = ("dense", "bm25", "tfidf", "keyword", "cross_domain", "length")


class RankRange(Section):
    rank_min: int = Field(2, ge=1)   # 1-based ranks, positives included (rank 1 is usually the positive)
    rank_max: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _range(self):
        if self.rank_max < self.rank_min:
            raise ValueError(f"rank_max ({self.rank_max}) < rank_min ({self.rank_min})")
        return self


class DenseMiningParams(RankRange):
    index: Literal["auto", "flat", "hnsw"] = "auto"   # auto: exact below approximate_above passages, HNSW above
    approximate_above: int = Field(200_000, ge=1)


class TfidfMiningParams(RankRange):
    analyzer: Literal["word", "char"] = "word"         # jieba words, or character n-grams
    ngram: tuple[int, int] = (1, 2)


class KeywordMiningParams(Section):
    top_keywords: int = Field(10, ge=1)
    method: Literal["tfidf", "textrank"] = "tfidf"
    max_candidates: int = Field(100, ge=1)


class CrossDomainMiningParams(Section):
    clusters: int = Field(8, ge=2)                     # k-means clusters when passages have no domain field
    max_candidates: int = Field(100, ge=1)


class LengthMiningParams(Section):
    tolerance: float = Field(0.2, ge=0.0, le=1.0)      # |len - len(positive)| <= tolerance * len(positive)
    max_candidates: int = Field(100, ge=1)


class RandomMiningParams(Section):
    mode: Literal["uniform", "far"] = "uniform"        # far: only passages the base model ranks >= far_rank
    far_rank: int = Field(1000, ge=1)


class GuardParams(Section):
    relative_margin: float | None = Field(None, ge=0.0, le=1.0)  # drop if score > positive_score * (1 - margin)
    max_score: float | None = None                                 # drop if score > max_score
    exclude_same_document: bool = False


class MiningParams(Section):
    num_negatives: int = Field(7, ge=0)
    hard_ratio: float = Field(0.7, ge=0.0, le=1.0)
    weights: dict[str, float] = {"dense": 0.5, "bm25": 0.5}
    dense: DenseMiningParams = DenseMiningParams()
    bm25: RankRange = RankRange()
    tfidf: TfidfMiningParams = TfidfMiningParams()
    keyword: KeywordMiningParams = KeywordMiningParams()
    cross_domain: CrossDomainMiningParams = CrossDomainMiningParams()
    length: LengthMiningParams = LengthMiningParams()
    random: RandomMiningParams = RandomMiningParams()
    guard: GuardParams = GuardParams()
    teacher_scores: bool = True
    encode_batch_size: int = Field(32, gt=0)

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; known: {list(STRATEGIES)}")
        if any(w < 0 for w in value.values()):
            raise ValueError("strategy weights must be >= 0")
        return value


class TrainParams(Section):
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(0, ge=0)  # 0: as many as the epochs give
    batch_size: int = Field(16, ge=2)
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0)
    temperature: float = Field(0.02, gt=0)
    train_group_size: int = Field(4, ge=1)  # 1 positive + (train_group_size - 1) hard negatives per query
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(50, ge=0)  # steps between resumable checkpoints; 0: none


class MergeParams(Section):
    weights: list[float] = [0.5, 0.5]  # [base, fine-tuned]

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("merge.weights must be two non-negative numbers [base, fine-tuned] with a positive sum")
        return value


class EvalParams(Section):
    k_values: list[int] = [1, 5, 10, 100]
    encode_batch_size: int = Field(32, gt=0)


class Params(Section):
    seed: int = 42
    data: DataParams = DataParams()
    chunk: ChunkParams = ChunkParams()
    split: SplitParams = SplitParams(train=0.7, val=0.1, test=0.2)
    qa_gen: QaGenParams = QaGenParams()
    model: ModelParams = ModelParams()
    vocab: VocabParams = VocabParams()
    mining: MiningParams = MiningParams()
    train: TrainParams = TrainParams()
    merge: MergeParams = MergeParams()
    eval: EvalParams = EvalParams()


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or breaks the schema; the message names the file and the key."""


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of sections")
    return params_from_dict(raw, source=str(path))


def params_from_dict(raw: dict, source: str = "params") -> Params:
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join(str(p) for p in e["loc"]) or "(top level)"
            message = e["msg"]
            if e["type"] == "extra_forbidden":
                message = "unknown key (check the spelling against params.yaml's documented keys)"
            problems.append(f"  {key}: {message}")
        raise ParamsError(f"{source}: invalid params:\n" + "\n".join(problems)) from None
