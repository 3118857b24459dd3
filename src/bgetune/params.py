"""The one typed schema of params.yaml. Its defaults equal params.yaml's (tests/test_params.py checks key by key).

Every stage starts with ``load_params()``: an unknown key, a wrong type, a ratio outside [0, 1], split ratios that do
not sum to 1 or a model reference that cannot name a model stop the stage with one line naming the key, before any
work is done. Checks that need more than the params (is the model reachable, does each split get documents) run in
``bgetune.preflight`` at the start of the first stage.

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

from bgetune.errors import BgetuneError

Ratio = Field(ge=0.0, le=1.0)
Precision = Literal["auto", "fp32", "bf16", "fp16"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ------------------------------------------------------------------------------------------------------------ data
class QaColumns(Section):
    query: list[str] = ["question"]   # joined by a newline when several (e.g. [title, ask])
    answer: str = "answer"
    title: str | None = None
    domain: str | None = None         # carried into the passage's domain (cross-domain negatives, per-domain metrics)
    id: str | None = None

    @field_validator("query", mode="before")
    @classmethod
    def _one_or_more(cls, value):
        return [value] if isinstance(value, str) else value


class DataParams(Section):
    raw_dir: str = "data/raw"
    # How .json/.jsonl(.gz) content is read; auto decides by content.
    format: Literal["auto", "articles", "qa_table", "squad", "flagembedding", "mldr", "llamaindex"] = "auto"
    encoding: str = "utf-8"          # any Python codec (utf-8 accepts a BOM); auto: detected per file
    on_bad_record: Literal["error", "skip"] = "error"   # skip: count malformed records by reason
    text_field: str = "text"
    text_file_field: str = "file"    # an article record may name a text file inside raw_dir instead
    title_field: str = "title"
    domain_field: str = "domain"
    id_field: str = "id"
    qa_columns: QaColumns = QaColumns()
    csv_separator: str = ","
    sheet: int | str = 0             # XLSX/XLS sheet index or name


class ChunkParams(Section):
    unit: Literal["chars", "tokens"] = "chars"   # tokens: the base model's tokenizer counts
    max_chars: int = Field(400, ge=2)
    min_chars: int = Field(10, ge=0)
    max_tokens: int = Field(0, ge=0)             # 0: model.passage_max_length minus the special tokens
    min_tokens: int = Field(5, ge=0)
    overlap: int = Field(0, ge=0)                # whole sentences carried into the next chunk, up to this (in unit)
    dedup: Literal["off", "exact", "near"] = "exact"
    near_threshold: float = Field(0.9, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _overlap(self):
        limit = self.max_tokens if self.unit == "tokens" else self.max_chars
        if limit and self.overlap >= limit:
            raise ValueError(f"chunk.overlap ({self.overlap}) must be smaller than the chunk size ({limit})")
        return self


class SplitParams(Section):
    train: float = Ratio
    val: float = Ratio
    test: float = Ratio
    group_by: Literal["document", "query_similarity"] = "document"
    query_similarity: float = Field(0.7, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self):
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split.train + split.val + split.test must be 1.0, got {total:.4f}")
        return self


# ---------------------------------------------------------------------------------------------------------- qa-gen
class HeuristicParams(Section):
    title_queries: bool = True
    key_sentence_queries: bool = True
    key_sentences_per_passage: int = Field(1, ge=0)
    splits: list[Literal["train", "val", "test"]] = ["train"]


class LlmParams(Section):
    base_url: str = "http://127.0.0.1:11434/v1"   # any OpenAI-compatible endpoint (this one: a local Ollama)
    model: str = "qwen2.5:7b-instruct"
    api_key_env: str | None = None     # the NAME of an environment variable holding the key (never the key)
    prompt: str = "zh"                 # zh | en (shipped templates) or a template file with {passage} and {n}
    language: Literal["zh", "en"] = "zh"
    queries_per_passage: int = Field(3, ge=1)   # also the most queries kept per passage
    splits: list[Literal["train", "val", "test"]] = ["train"]
    max_passages: int = Field(0, ge=0)  # 0: every passage of those splits; else a seeded sample
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, ge=16)
    max_reply_bytes: int = Field(65536, ge=1024)   # a longer reply is cut here and counted
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    parse_retries: int = Field(1, ge=0)
    cache_dir: str = "data/llm_cache"
    min_chars: int = Field(4, ge=1)
    max_chars: int = Field(64, ge=1)
    min_language_ratio: float = Field(0.5, ge=0.0, le=1.0)
    roundtrip: Literal["bm25", "dense", "off"] = "bm25"
    roundtrip_k: int = Field(20, ge=1)
    roundtrip_model: str = "bundled:all-MiniLM-L6-v2"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class QaGenParams(Section):
    sources: list[Literal["existing", "heuristic", "llm"]] = ["existing", "heuristic"]
    heuristic: HeuristicParams = HeuristicParams()
    llm: LlmParams = LlmParams()

    @field_validator("sources")
    @classmethod
    def _sources(cls, value):
        if not value:
            raise ValueError("at least one source is needed")
        return value


# ----------------------------------------------------------------------------------------------------------- model
class ModelParams(Section):
    base: str = "bundled:all-MiniLM-L6-v2"
    query_instruction: str = "auto"        # auto: BGE's instruction for bge-*-zh/en-v1.5, none for others
    train_instruction: str | None = None   # None: query_instruction (a recipe may train without one)
    eval_instruction: str | None = None    # None: query_instruction; also saved as the model's "query" prompt
    query_max_length: int = Field(64, ge=8)
    passage_max_length: int = Field(512, ge=8)    # capped by the model's position embeddings
    pooling: Literal["auto", "cls", "mean"] = "auto"   # folders without modules.json; auto: CLS for BGE
    device: str = "auto"                   # auto: cuda, then mps, then cpu | cpu | cuda | cuda:N | mps
    precision: Precision = "auto"          # encoding: auto = bf16 (or fp16) on a GPU, fp32 on a CPU
    trust_remote_code: bool = False

    @field_validator("base")
    @classmethod
    def _base_names_a_model(cls, value: str) -> str:
        from bgetune.models import check_model_reference

        check_model_reference(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        from bgetune.device import check_device_name

        check_device_name(value)
        return value


# ----------------------------------------------------------------------------------------------------------- vocab
class VocabParams(Section):
    expand_chars: bool = True
    min_char_count: int = Field(1, ge=1)
    init_noise: float = Field(1.0, ge=0.0)   # new rows = mean + init_noise · std · N(0, 1), seeded
    expand_terms: bool = False
    top_terms: int = Field(500, ge=0)
    min_term_count: int = Field(3, ge=1)
    term_file: str = ""
    warmup_steps: int = Field(0, ge=0)       # masked-language-model steps on the corpus before contrastive training
    warmup_lr: float = Field(1e-4, gt=0)
    warmup_scope: Literal["embeddings", "top_layers", "all"] = "embeddings"
    warmup_batch_size: int = Field(16, ge=1)


# ---------------------------------------------------------------------------------------------------------- mining
STRATEGIES = ("dense", "bm25", "tfidf", "keyword", "cross_domain", "length")


class RankRange(Section):
    rank_min: int = Field(2, ge=1)
    rank_max: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _range(self):
        if self.rank_max < self.rank_min:
            raise ValueError(f"rank_max ({self.rank_max}) < rank_min ({self.rank_min})")
        return self


class DenseMiningParams(RankRange):
    index: Literal["auto", "flat", "hnsw"] = "auto"   # auto: exact below approximate_above (always exact on a GPU)
    approximate_above: int = Field(200_000, ge=1)


class TfidfMiningParams(RankRange):
    analyzer: Literal["word", "char"] = "word"
    ngram: tuple[int, int] = (1, 2)


class KeywordMiningParams(Section):
    top_keywords: int = Field(10, ge=1)
    method: Literal["tfidf", "textrank"] = "tfidf"
    max_candidates: int = Field(100, ge=1)


class CrossDomainMiningParams(Section):
    clusters: int = Field(8, ge=2)
    max_candidates: int = Field(100, ge=1)


class LengthMiningParams(Section):
    tolerance: float = Field(0.2, ge=0.0, le=1.0)
    max_candidates: int = Field(100, ge=1)


class RandomMiningParams(Section):
    mode: Literal["uniform", "far"] = "uniform"
    far_rank: int = Field(1000, ge=1)


class GuardParams(Section):
    relative_margin: float | None = Field(None, ge=0.0, le=1.0)
    max_score: float | None = None
    exclude_same_document: bool = False


class MiningParams(Section):
    model: str = ""             # the model that scores candidates; "": the vocabulary-expanded base
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
    # Teacher scores for distillation (pos_scores/neg_scores): "" the scoring model's cosines; a model folder or
    # hub id (a reranker or a stronger embedder); "hybrid": RRF of BM25 and the scoring model, as a teacher
    # where no reranker exists.
    teacher: str = ""
    rounds: int = Field(1, ge=1, le=2)   # 2: re-mine with the round-1 fine-tuned model and train again (ANCE)
    encode_batch_size: int = Field(32, gt=0)

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        if value:
            from bgetune.models import check_model_reference

            check_model_reference(value)
        return value

    @field_validator("teacher")
    @classmethod
    def _teacher(cls, value: str) -> str:
        if value and value != "hybrid":
            from bgetune.models import check_model_reference

            check_model_reference(value)
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; known: {list(STRATEGIES)}")
        if any(w < 0 for w in value.values()):
            raise ValueError("strategy weights must be >= 0")
        return value


# ----------------------------------------------------------------------------------------------------------- train
LOSS_NAMES = ("infonce", "cached_infonce", "cosine", "online_contrastive")
SELECT_BY = ("ndcg@10", "recall@10", "mrr@10", "noise_similarity")


class LoraParams(Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, le=1.0)
    target_modules: list[str] = ["query", "key", "value", "dense"]


class Stage2Params(Section):
    """A second stage on other pairs (e.g. hand-labelled ones): every *.jsonl in ``folder`` (FlagEmbedding format),
    with its own loss, noise penalty, learning rate, length and model selection."""

    enabled: bool = False
    folder: str = "data/stage2"
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(0, ge=0)
    lr: float = Field(1e-5, gt=0)
    loss: Literal["infonce", "cached_infonce", "cosine", "online_contrastive"] = "infonce"
    noise_weight: float = Field(0.0, ge=0.0)
    noise_margin: float = Field(0.3, ge=-1.0, le=1.0)
    freeze_embeddings: bool = True
    select_by: Literal["ndcg@10", "recall@10", "mrr@10", "noise_similarity"] = "ndcg@10"


class TrainParams(Section):
    backend: Literal["sentence_transformers", "flagembedding"] = "sentence_transformers"
    devices: int = Field(1, ge=1)                 # > 1: the train stage launches torchrun with one process each
    method: Literal["full", "lora"] = "full"
    lora: LoraParams = LoraParams()
    loss: Literal["infonce", "cached_infonce", "cosine", "online_contrastive"] = "infonce"
    mini_batch_size: int = Field(8, ge=1)         # cached_infonce: texts per forward pass (memory), not the batch
    contrastive_margin: float = Field(0.5, ge=0.0)
    noise_weight: float = Field(0.0, ge=0.0)
    noise_margin: float = Field(0.3, ge=-1.0, le=1.0)
    noise_texts: str = ""
    distill_weight: float = Field(0.0, ge=0.0)    # > 0: KL(teacher || student) over each query's group
    distill_temperature: float = Field(0.02, gt=0)
    freeze_embeddings: bool = False
    precision: Precision = "auto"                 # auto: bf16 where the GPU has it, else fp16; fp32 on a CPU
    gradient_checkpointing: bool = False
    gradient_accumulation_steps: int = Field(1, ge=1)   # in-batch negatives stay within each micro-batch
    auto_batch_size: bool = False                 # on out-of-memory, halve the batch and retry
    eval_every: int = Field(0, ge=0)
    eval_max_passages: int = Field(2000, ge=10)
    select_by: Literal["ndcg@10", "recall@10", "mrr@10", "noise_similarity"] = "ndcg@10"
    early_stopping_patience: int = Field(0, ge=0)
    keep_best: bool = True
    stage2: Stage2Params = Stage2Params()
    epochs: int = Field(2, ge=1)
    max_steps: int = Field(0, ge=0)
    batch_size: int = Field(16, ge=2)             # queries per device per step
    lr: float = Field(5e-5, gt=0)
    embedding_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    temperature: float = Field(0.02, gt=0)
    train_group_size: int = Field(4, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(5, ge=1)
    checkpoint_every: int = Field(50, ge=0)
    dataloader_workers: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _checkpoints_for_selection(self):
        if self.eval_every and self.checkpoint_every and self.checkpoint_every % self.eval_every:
            raise ValueError(f"train.checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                             f"train.eval_every ({self.eval_every}) so that the best val weights are kept")
        return self


# ----------------------------------------------------------------------------------------------------------- merge
class MergeModel(Section):
    path: str
    weight: float = Field(ge=0.0)


class MergeParams(Section):
    base: Literal["expanded", "original"] = "expanded"   # the base mixed in: vocabulary-expanded, or as shipped
    weights: list[float] = [0.5, 0.5]          # [base, fine-tuned]; used as is unless search is on
    models: list[MergeModel] = []              # more models to mix in (other runs, experiments), with weights
    search: Literal["off", "grid", "examples"] = "off"
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
    rrf_k: int = Field(60, ge=1)
    weights: list[float] = [1.0, 1.0]          # [dense, bm25]
    tune: bool = False                         # choose the dense weight on the val split

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("must be two non-negative numbers [dense, bm25] with a positive sum")
        return value


class GeneralSetParams(Section):
    data: DataParams = DataParams(raw_dir="")
    max_queries: int = Field(500, ge=1)
    max_passages: int = Field(0, ge=0)


class EvalParams(Section):
    k_values: list[int] = [1, 5, 10, 20, 100]
    level: Literal["passage", "document"] = "passage"   # the headline level; both are reported when documents span
    doc_score: Literal["max", "sum", "first"] = "max"   # several passages (a document's score from its passages)
    encode_batch_size: int = Field(32, gt=0)
    pair_negatives: int = Field(10, ge=1)
    noise_texts: str = ""
    hybrid: HybridParams = HybridParams()
    general: GeneralSetParams = GeneralSetParams()
    leakage: Literal["error", "warn"] = "error"
    extra_models: dict[str, str] = {}

    @field_validator("k_values")
    @classmethod
    def _k_values(cls, value: list[int]) -> list[int]:
        if not value or any(k < 1 for k in value):
            raise ValueError("must be a non-empty list of positive cut-offs, e.g. [1, 10, 100]")
        return sorted(set(value))


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

    @model_validator(mode="after")
    def _across_sections(self):
        if self.split.train <= 0:
            raise ValueError("split.train must be > 0: training needs pairs")
        if self.split.test <= 0:
            raise ValueError("split.test must be > 0: the test split is what the evaluate stages measure")
        if self.train.eval_every and self.split.val <= 0:
            raise ValueError("train.eval_every needs val pairs: set split.val > 0 (or train.eval_every: 0)")
        if self.merge.search != "off" and self.split.val <= 0:
            raise ValueError("merge.search needs val pairs: set split.val > 0 (or merge.search: off)")
        if self.eval.hybrid.tune and self.split.val <= 0:
            raise ValueError("eval.hybrid.tune needs val pairs: set split.val > 0")
        return self


class ParamsError(BgetuneError, ValueError):
    """params.yaml is missing, unreadable or breaks the schema; the message names the file and the key."""


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f": line {mark.line + 1}" if mark is not None else ""
        raise ParamsError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
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
            message = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                message = "unknown key (check the spelling against params.yaml's documented keys)"
            problems.append(f"{key}: {message}")
        raise ParamsError(f"{source}: invalid params: " + "; ".join(problems)) from None
