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
    format: Literal["auto", "articles", "qa_table", "squad", "flagembedding"] = "auto"  # for .json/.jsonl content
    encoding: str = "utf-8"  # any Python codec (utf-8 accepts a BOM); "auto": utf-8, else gb18030
    on_bad_record: Literal["error", "skip"] = "error"   # skip: count malformed records by reason in metrics/data.json
    text_field: str = "text"
    text_file_field: str = "file"    # an article record may name a text file beside the JSONL instead
    title_field: str = "title"
    domain_field: str = "domain"
    id_field: str = "id"
    qa_columns: QaColumns = QaColumns()
    csv_separator: str = ","
    sheet: int | str = 0             # XLSX sheet index or name


class ChunkParams(Section):
    unit: Literal["chars", "tokens"] = "chars"   # tokens: the base model's tokenizer counts
    max_chars: int = Field(400, ge=2)
    min_chars: int = Field(10, ge=0)
    max_tokens: int = Field(256, ge=2)
    min_tokens: int = Field(5, ge=0)
    overlap: int = Field(0, ge=0)                 # whole sentences carried into the next chunk, up to this (in unit)
    dedup: Literal["off", "exact", "near"] = "exact"   # exact: normalised text; near: + char-bigram cosine
    near_threshold: float = Field(0.9, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _overlap(self):
        limit = self.max_tokens if self.unit == "tokens" else self.max_chars
        if self.overlap >= limit:
            raise ValueError(f"chunk.overlap ({self.overlap}) must be smaller than the chunk size ({limit})")
        return self


class SplitParams(Section):
    train: float = Ratio
    val: float = Ratio
    test: float = Ratio
    group_by: Literal["document", "query_similarity"] = "document"
    query_similarity: float = Field(0.7, gt=0.0, le=1.0)   # char-bigram cosine joining questions into one group

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


class LlmParams(Section):
    base_url: str = "http://127.0.0.1:11434/v1"   # any OpenAI-compatible endpoint (this one: a local Ollama)
    model: str = "qwen2.5:7b-instruct"
    api_key_env: str | None = None     # the NAME of an environment variable holding the key (never the key)
    prompt: str = "zh"                 # zh | en (shipped templates) or a template file with {passage} and {n}
    language: Literal["zh", "en"] = "zh"   # for a custom template: the language check's expectation
    queries_per_passage: int = Field(3, ge=1)
    splits: list[Literal["train", "val", "test"]] = ["train"]
    max_passages: int = Field(0, ge=0)  # 0: every passage of those splits; else a seeded sample
    temperature: float = Field(0.7, ge=0.0)
    max_tokens: int = Field(512, ge=16)
    concurrency: int = Field(4, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)   # transport retries per request (timeouts, 429, 5xx, broken JSON)
    backoff_s: float = Field(1.0, ge=0)  # first retry waits this, doubling (Retry-After wins when given)
    max_backoff_s: float = Field(30.0, ge=0)
    parse_retries: int = Field(1, ge=0)  # asking again when a reply holds no parseable query
    cache_dir: str = "data/llm_cache"   # outside DVC outputs: survives re-runs and kills
    min_chars: int = Field(4, ge=1)
    max_chars: int = Field(64, ge=1)
    min_language_ratio: float = Field(0.5, ge=0.0, le=1.0)   # share of letters in the expected script
    roundtrip: Literal["bm25", "dense", "off"] = "bm25"        # the query must find its passage in the top k
    roundtrip_k: int = Field(20, ge=1)
    roundtrip_model: str = "bundled:all-MiniLM-L6-v2"         # for roundtrip: dense


class QaGenParams(Section):
    sources: list[Literal["existing", "heuristic", "llm"]] = ["existing", "heuristic"]
    heuristic: HeuristicParams = HeuristicParams()
    llm: LlmParams = LlmParams()


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
    # New rows: mean embedding + init_noise * per-dimension std * N(0, 1). 1.0 draws them like the old rows, so new
    # characters start as distinct as known ones (measured on meddialog, untrained: NDCG@10 0.003 at 0.1, 0.064 at 1.0).
    init_noise: float = Field(1.0, ge=0.0)
    expand_terms: bool = False   # also add multi-character domain terms (jieba TF-IDF over the corpus)
    top_terms: int = Field(500, ge=0)
    min_term_count: int = Field(3, ge=1)
    term_file: str = ""          # a user word list (one term per line), e.g. data/vocab/terms.txt; added first


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
    model: str = ""   # the model that scores candidates; "": the vocabulary-expanded base (a folder or hub id)
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

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        if value:
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


class LoraParams(Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, le=1.0)
    target_modules: list[str] = ["query", "key", "value", "dense"]   # BERT names; bge-m3 (XLM-R) uses the same


class Stage2Params(Section):
    """A second stage on other pairs (e.g. hand-labelled ones): every *.jsonl in ``folder`` (FlagEmbedding format)."""

    enabled: bool = False
    folder: str = "data/stage2"
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(0, ge=0)
    lr: float = Field(1e-5, gt=0)
    freeze_embeddings: bool = True   # keep the token embeddings of stage 1 (and of the expanded vocabulary)


class TrainParams(Section):
    backend: Literal["bgetune", "flagembedding"] = "bgetune"   # flagembedding: FlagEmbedding's own trainer
    devices: int = Field(1, ge=1)                  # flagembedding backend: GPUs for torchrun (see README)
    method: Literal["full", "lora"] = "full"
    lora: LoraParams = LoraParams()
    loss: Literal["infonce", "cached_infonce", "cosine", "online_contrastive"] = "infonce"
    mini_batch_size: int = Field(8, ge=1)          # cached_infonce: texts per forward pass (memory), not the batch
    contrastive_margin: float = Field(0.5, ge=0.0)  # online_contrastive: cosine-distance margin for negatives
    noise_weight: float = Field(0.0, ge=0.0)       # > 0: penalise similarity of queries to unrelated noise texts
    noise_margin: float = Field(0.3, ge=-1.0, le=1.0)
    noise_texts: str = ""                          # a file, one text per line; "": the shipped chit-chat list
    freeze_embeddings: bool = False
    eval_every: int = Field(0, ge=0)               # steps between val-split evaluations; 0: none
    eval_max_passages: int = Field(2000, ge=10)    # val positives + a seeded sample of the corpus
    early_stopping_patience: int = Field(0, ge=0)  # evaluations without improvement before stopping; 0: never
    keep_best: bool = True                         # end with the best val checkpoint, not the last step
    stage2: Stage2Params = Stage2Params()
    epochs: int = Field(1, ge=1)
    max_steps: int = Field(0, ge=0)  # 0: as many as the epochs give
    batch_size: int = Field(16, ge=2)
    lr: float = Field(2e-5, gt=0)
    # Learning rate of the token-embedding matrix; 0: train.lr. Rows added by vocabulary expansion start random and
    # must move far, which the small lr that suits the transformer layers does only over thousands of steps.
    embedding_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0)
    temperature: float = Field(0.02, gt=0)
    train_group_size: int = Field(4, ge=1)  # 1 positive + (train_group_size - 1) hard negatives per query
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(50, ge=0)  # steps between resumable checkpoints; 0: none


class MergeParams(Section):
    weights: list[float] = [0.5, 0.5]  # [base, fine-tuned]; used as is unless search is on
    search: bool = False               # pick the fine-tuned weight on the val split (LM-Cocktail's merge-with-data)
    grid: list[float] = [0.0, 0.25, 0.5, 0.75, 1.0]   # fine-tuned weights tried (base gets 1 - w)
    ood_tolerance: float = Field(0.02, ge=0.0)      # general-set NDCG@10 may fall at most this below the base's
    search_max_passages: int = Field(5000, ge=10)    # val positives + a seeded sample of the rest, per weight

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: list[float]) -> list[float]:
        if not value or any(not 0.0 <= w <= 1.0 for w in value):
            raise ValueError("merge.grid must be a non-empty list of fine-tuned weights in [0, 1]")
        return value

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or any(w < 0 for w in value) or sum(value) <= 0:
            raise ValueError("merge.weights must be two non-negative numbers [base, fine-tuned] with a positive sum")
        return value


class HybridParams(Section):
    enabled: bool = True
    rrf_k: int = Field(60, ge=1)
    weights: list[float] = [1.0, 1.0]  # [dense, bm25]


class GeneralSetParams(Section):
    """An out-of-domain set (any format `split` reads) to see whether general ability survived fine-tuning."""

    data: DataParams = DataParams(raw_dir="")   # raw_dir "": no general set
    max_queries: int = Field(500, ge=1)          # a seeded sample keeps each model's evaluation in minutes
    max_passages: int = Field(0, ge=0)           # 0: every passage; else the sampled queries' positives + a sample


class EvalParams(Section):
    k_values: list[int] = [1, 5, 10, 20, 100]
    encode_batch_size: int = Field(32, gt=0)
    pair_negatives: int = Field(10, ge=1)    # random passages per test query for pair AUC / separation
    noise_texts: str = ""                    # a file, one unrelated text per line; "": the shipped chit-chat list
    hybrid: HybridParams = HybridParams()
    general: GeneralSetParams = GeneralSetParams()
    leakage: Literal["error", "warn"] = "error"
    extra_models: dict[str, str] = {}        # name -> folder or hub id, evaluated by the evaluate-extra stage


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
