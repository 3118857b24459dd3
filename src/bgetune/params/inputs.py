"""params sections of the data stages: data, chunk, split, qa_gen."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from bgetune.params.section import NonEmptyText, Ratio, Section


# ------------------------------------------------------------------------------------------------------------ data
class QaColumns(Section):
    # joined by a newline when several (e.g. [title, ask]); none would read a QA table as answers without questions
    query: list[NonEmptyText] = Field(["question"], min_length=1)
    # Columns holding other questions for the same answer (an FAQ's similar questions, a patient's full description):
    # each non-empty line one more pair, used in the splits qa_gen.existing.alt_query_splits (training only by default).
    alt_queries: list[NonEmptyText] = []
    answer: NonEmptyText = "answer"
    title: str | None = None
    domain: str | None = None         # carried into the passage's domain (cross-domain negatives, per-domain metrics)
    id: str | None = None

    @field_validator("query", "alt_queries", mode="before")
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
    csv_separator: NonEmptyText = ","
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
    # true: each passage starts with its title (the section's heading, else the document's title) on a line of its
    # own, so it is embedded and BM25-indexed with its context; index passages the same way where you deploy.
    title_prefix: bool = False

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
    model: NonEmptyText = "qwen2.5:7b-instruct"
    api_key_env: str | None = None     # the NAME of an environment variable holding the key (never the key)
    prompt: NonEmptyText = "zh"        # zh | en (shipped templates) or a template file with {passage} and {n}
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


class ExistingParams(Section):
    # The splits that get the pairs of data.qa_columns.alt_queries; val and test keep the main questions, so that
    # the evaluation asks what users ask (and stays comparable with a run without them).
    alt_query_splits: list[Literal["train", "val", "test"]] = ["train"]


class QaGenParams(Section):
    sources: list[Literal["existing", "heuristic", "llm"]] = ["existing", "heuristic"]
    existing: ExistingParams = ExistingParams()
    heuristic: HeuristicParams = HeuristicParams()
    llm: LlmParams = LlmParams()

    @field_validator("sources")
    @classmethod
    def _sources(cls, value):
        if not value:
            raise ValueError("at least one source is needed")
        return value
