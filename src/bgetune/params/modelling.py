"""params sections of the model stages: model, lexical, vocab, mining, train."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bgetune.params.section import NonEmptyText, Section

Precision = Literal["auto", "fp32", "bf16", "fp16"]


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


# --------------------------------------------------------------------------------------------------------- lexical
class LexicalParams(Section):
    """The BM25 of the evaluation — the baseline and the hybrid's lexical half (one section, so the baseline is the
    BM25 the hybrid fuses) — and of qa-gen's round-trip check. Mining's BM25 is ``mining.bm25``'s own."""
    # cjk_bigrams: each Chinese/Japanese character and each adjacent pair, other scripts as words (Lucene's CJK
    # bigrams with unigrams; beat jieba's words on meddialog and CMRC) | words: jieba search-mode words
    tokens: Literal["cjk_bigrams", "words"] = "cjk_bigrams"
    k1: float = Field(1.2, gt=0)           # term-frequency saturation (Lucene's default)
    b: float = Field(0.75, ge=0, le=1)     # length normalisation


# ----------------------------------------------------------------------------------------------------------- vocab
class VocabParams(Section):
    expand_chars: bool = True
    min_char_count: int = Field(1, ge=1)
    init_noise: float = Field(1.0, ge=0.0)   # new rows = mean + init_noise · std · N(0, 1), seeded
    # dictionary: new rows from each token's English senses; noise: seeded noise; cooccurrence: corpus PPMI + SVD
    init: Literal["noise", "cooccurrence", "dictionary"] = "dictionary"
    init_window: int = Field(5, ge=1)        # ± tokens counted as context by init: cooccurrence
    dictionary: NonEmptyText = "bundled:cc-cedict"   # init: dictionary: a CC-CEDICT-format file or the bundled one
    dictionary_senses: int = Field(3, ge=1)  # senses per entry used by init: dictionary (the k-th weighted 1/k)
    # init: dictionary: also re-start the base's own rows of the corpus's Han characters (an English base's few CJK
    # rows mark a script, not a meaning); never for a base that reads Chinese (bge-*-zh, bge-m3)
    init_known_characters: bool = False
    expand_terms: bool = False
    top_terms: int = Field(500, ge=0)
    min_term_count: int = Field(3, ge=1)
    term_file: str = ""
    warmup_steps: int = Field(0, ge=0)       # masked-language-model steps on the corpus before contrastive training
    warmup_lr: float = Field(1e-4, gt=0)
    warmup_scope: Literal["embeddings", "top_layers", "all"] = "embeddings"
    warmup_batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _known_from_dictionary(self):
        if self.init_known_characters and self.init != "dictionary":
            raise ValueError(f"init_known_characters needs init: dictionary (init is {self.init!r})")
        return self


# ---------------------------------------------------------------------------------------------------------- mining
STRATEGIES = ("dense", "bm25", "tfidf", "keyword", "cross_domain", "length")
# mining.teacher values computed from BM25 and the scoring model's cosines (no teacher model to load).
LEXICAL_TEACHERS = ("hybrid", "bm25")


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


class Bm25MiningParams(RankRange):
    """The bm25 strategy's rank range and its BM25 (also the hybrid and bm25 teachers'). jieba's words by default:
    mining over CJK bigrams (the evaluation's default) gave the same dense model and a weaker hybrid on both
    benchmarks (docs/benchmarks.md)."""
    tokens: Literal["cjk_bigrams", "words"] = "words"
    k1: float = Field(1.5, gt=0)
    b: float = Field(0.75, ge=0, le=1)

    def lexical(self) -> LexicalParams:
        return LexicalParams(tokens=self.tokens, k1=self.k1, b=self.b)


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
    # every strategy listed (0: off), so that `dvc exp run -S mining.weights.<strategy>=…` can set one (DVC's
    # params override refuses a key params.yaml lacks unless it is written +mining.weights.<strategy>)
    weights: dict[str, float] = {"dense": 0.5, "bm25": 0.5, "tfidf": 0.0, "keyword": 0.0, "cross_domain": 0.0,
                                 "length": 0.0}
    dense: DenseMiningParams = DenseMiningParams()
    bm25: Bm25MiningParams = Bm25MiningParams()
    tfidf: TfidfMiningParams = TfidfMiningParams()
    keyword: KeywordMiningParams = KeywordMiningParams()
    cross_domain: CrossDomainMiningParams = CrossDomainMiningParams()
    length: LengthMiningParams = LengthMiningParams()
    random: RandomMiningParams = RandomMiningParams()
    guard: GuardParams = GuardParams()
    # Teacher scores for distillation (pos_scores/neg_scores): "" the scoring model's cosines; a model folder or
    # hub id (a reranker or a stronger embedder); "hybrid": the mean of the scoring model's cosine and BM25 (mapped
    # onto the cosine range), as a teacher where no reranker exists; "bm25": BM25 alone, mapped the same way.
    teacher: str = ""
    rounds: int = Field(1, ge=1, le=2)   # 2: re-mine (and rescore the teacher) with the round-1 model, train again
    encode_batch_size: int = Field(32, gt=0)
    # The seed of the negatives' draws; None: the top-level seed. Another value re-draws them without touching the
    # split (which the top-level seed draws): a second run for a model soup.
    seed: int | None = None

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
        if value and value not in LEXICAL_TEACHERS:
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
    target_modules: list[NonEmptyText] = Field(["query", "key", "value", "dense"], min_length=1)
    # The adapters' learning rate when train.method is lora (train.lr stays full fine-tuning's); null: train.lr. An
    # adapter starts at zero (LoRA's B matrix) and learns a low-rank update, so it wants a larger rate than the
    # weights it adapts: on meddialog, adapters at train.lr's 5e-5 ranked 0.040 NDCG@10 below full fine-tuning,
    # at 5e-4 level with it (docs/benchmarks.md, "LoRA's learning rate").
    lr: float | None = Field(5e-4, gt=0)


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
    # forward passes of this many length-sorted texts; 0: one pass; auto: 16 on a CPU, one pass on a GPU
    length_chunk_size: int | Literal["auto"] = "auto"
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)   # null: the model's config
    contrastive_margin: float = Field(0.5, ge=0.0)
    noise_weight: float = Field(0.0, ge=0.0)
    noise_margin: float = Field(0.3, ge=-1.0, le=1.0)
    noise_texts: str = ""
    distill_weight: float = Field(0.0, ge=0.0)    # > 0: KL(teacher || student) over each query's group
    # The teacher's softmax temperature. auto: 1 for a cross-encoder teacher's logits (as FlagEmbedding reads a
    # reranker's), train.temperature for cosines (the scoring model, a bi-encoder, hybrid, bm25): a reranker's
    # logits span ~±10, so at 0.02 its distribution would be one-hot, a hard label instead of a ranking.
    distill_temperature: float | Literal["auto"] = "auto"
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
    # none: batches drawn from the whole shuffled set; domain: each batch from one domain (the positive passage's:
    # the sub-folder or the QA table's domain column), so in-batch negatives share its topic (E5's and GTE's
    # same-source batches); a corpus of one domain batches as with none.
    batch_by: Literal["none", "domain"] = "none"
    lr: float = Field(5e-5, gt=0)
    embedding_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    # adamw: AdamW under a linear decay; schedule_free_adamw: Schedule-Free AdamW (Defazio et al. 2024), a constant
    # learning rate after the warm-up and the weights' running average as the result (the Trainer's integration).
    optimizer: Literal["adamw", "schedule_free_adamw"] = "adamw"
    temperature: float = Field(0.02, gt=0)
    # InfoNCE's terms, as sentence-transformers' MultipleNegativesRankingLoss names them (training/losses/infonce.py):
    # the directions scored (query_to_doc always), one softmax over them all (joint) or one each (per_direction),
    # and hardness weighting (α · cos added to the chosen negatives' logits). Hardness weighting of the in-batch
    # negatives at α 9 is on by default: it beat its plain twin in 6 of 6 bench runs on two data sets, at the same
    # time (docs/benchmarks.md); the FlagEmbedding backend and the pair losses need hardness_mode: off.
    directions: list[Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]] = ["query_to_doc"]
    partition_mode: Literal["joint", "per_direction"] = "joint"
    hardness_mode: Literal["off", "in_batch_negatives", "hard_negatives", "all_negatives"] = "in_batch_negatives"
    hardness_strength: float = Field(9.0, ge=0.0)   # α; unused when hardness_mode is off
    train_group_size: int = Field(4, ge=1)
    max_grad_norm: float = Field(1.0, gt=0)
    log_every: int = Field(5, ge=1)
    checkpoint_every: int = Field(50, ge=0)
    dataloader_workers: int = Field(0, ge=0)
    # The seed of data order and initialisation; None: the top-level seed. Another value trains a second run on the
    # same split (which the top-level seed draws): an ingredient of a model soup (merge.models).
    seed: int | None = None

    @field_validator("length_chunk_size")
    @classmethod
    def _length_chunk_size(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be auto or a number of texts >= 0 (0: one pass)")
        return value

    @model_validator(mode="after")
    def _optimizer_on_its_backend(self):
        if self.optimizer != "adamw" and self.backend == "flagembedding":
            raise ValueError(f"train.optimizer: {self.optimizer} runs on the sentence_transformers backend only "
                             "(FlagEmbedding saves the model itself, before the average is taken); use adamw")
        if self.batch_by != "none" and self.backend == "flagembedding":
            raise ValueError(f"train.batch_by: {self.batch_by} runs on the sentence_transformers backend only "
                             "(FlagEmbedding draws its own batches); use none")
        return self

    @field_validator("distill_temperature")
    @classmethod
    def _positive_temperature(cls, value):
        if value != "auto" and value <= 0:
            raise ValueError(f"train.distill_temperature: {value} must be > 0 (or auto)")
        return value

    @field_validator("hardness_mode", mode="before")
    @classmethod
    def _hardness_off(cls, value):
        return "off" if value is False else value   # YAML reads a bare off as false

    @model_validator(mode="after")
    def _infonce_terms(self):
        terms = self.directions != ["query_to_doc"] or self.hardness_mode != "off"
        if "query_to_doc" not in self.directions:
            raise ValueError(f"train.directions: {self.directions} must include query_to_doc (the positive pair)")
        if len(set(self.directions)) != len(self.directions):
            raise ValueError(f"train.directions: {self.directions} names a direction twice")
        if self.partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(self.directions):
            raise ValueError("train.partition_mode: per_direction needs every direction to hold the positive pair; "
                             "query_to_query and doc_to_doc do not (use joint)")
        if self.hardness_mode != "off" and self.hardness_strength == 0:
            raise ValueError(f"train.hardness_mode: {self.hardness_mode} with train.hardness_strength: 0 weighs "
                             "nothing; give α > 0, or set train.hardness_mode: off")
        if terms and self.loss not in ("infonce", "cached_infonce"):
            shaped = [f"train.directions: {self.directions}"] if self.directions != ["query_to_doc"] else []
            if self.hardness_mode != "off":
                shaped.append(f"train.hardness_mode: {self.hardness_mode} (set it to off)")
            raise ValueError(f"train.loss is {self.loss}, which is not InfoNCE: {' and '.join(shaped)} "
                             "shape InfoNCE only")
        return self

    @model_validator(mode="after")
    def _checkpoints_for_selection(self):
        if self.eval_every and self.checkpoint_every and self.checkpoint_every % self.eval_every:
            raise ValueError(f"train.checkpoint_every ({self.checkpoint_every}) must be a multiple of "
                             f"train.eval_every ({self.eval_every}) so that the best val weights are kept")
        return self


# ---------------------------------------------------------------------------------------------------------- rerank
class RerankParams(Section):
    """A cross-encoder that reorders the hybrid's top k (the rerank stage trains it; evaluate@finetuned and @merged
    score it). Off by default: on meddialog it lifted an 80-step run's hybrid by +0.009 [+0.005, +0.013] NDCG@10 at
    37 CPU-minutes of training (docs/benchmarks.md), not yet at equal time."""

    enabled: bool = False
    # finetuned: the fine-tuned bi-encoder's transformer (its trained vocabulary) under a new one-logit head; or a
    # cross-encoder to fine-tune further (hub id or folder, e.g. BAAI/bge-reranker-base)
    init: NonEmptyText = "finetuned"
    top_k: int = Field(20, ge=10)                 # the hybrid's top k it reorders (NDCG@10 needs 10)
    hard_negatives: int = Field(3, ge=0)          # mined negatives per question (data/train.jsonl)
    random_negatives: int = Field(1, ge=0)        # in-batch negatives per question
    batch_size: int = Field(16, ge=1)
    epochs: float = Field(1.0, gt=0)
    lr: float = Field(1e-4, gt=0)
    max_length: int = Field(256, ge=16)           # question and passage together, in tokens
    precision: Precision = "auto"                 # training and scoring: auto = bf16 (or fp16) on a GPU, fp32 on a CPU
    predict_batch_size: int = Field(64, ge=1)
    # the final score: weight · reranker + (1 − weight) · hybrid, each min-max normalised over the question's k
    weight: float = Field(0.4, ge=0.0, le=1.0)
    tune: bool = True                             # the weight chosen on val over 0, 0.1, …, 1
    checkpoint_every: int = Field(50, ge=0)
    seed: int | None = None                       # None: the top-level seed

    @field_validator("init")
    @classmethod
    def _init_names_a_model(cls, value: str) -> str:
        if value != "finetuned":
            from bgetune.models import check_model_reference

            check_model_reference(value)
        return value

    @model_validator(mode="after")
    def _negatives(self):
        if self.hard_negatives + self.random_negatives == 0:
            raise ValueError("rerank.hard_negatives and rerank.random_negatives are both 0: the reranker needs "
                             "negatives to learn from")
        return self
