"""Shared test set-up: one torch thread, no hub, and tiny random-initialised BERT models built in seconds."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A small vocabulary: ASCII letters and digits, some words, and a few CJK characters (the rest will be [UNK]).
BASE_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + list("的是在了一")
WORDS = ["the", "cat", "dog", "fish", "bird", "red", "blue", "green", "big", "small", "apple", "banana"]


def build_tiny_model(folder: Path, pooling: str = "mean", seed: int = 0, extra_tokens: list[str] | None = None,
                     sentence_transformers_folder: bool = True) -> Path:
    """Write a random-initialised 2-layer BERT (hidden 32) with its tokenizer to ``folder``; optionally wrap it as a
    sentence-transformers folder with ``pooling`` and normalisation."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokens = SPECIAL + BASE_CHARS + ["##" + c for c in BASE_CHARS[:36]] + WORDS + list(extra_tokens or [])
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    model = BertModel(config)
    raw = folder if not sentence_transformers_folder else folder.with_name(folder.name + "-raw")
    model.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    if not sentence_transformers_folder:
        return raw
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(raw), max_seq_length=64)
    st = SentenceTransformer(modules=[transformer, Pooling(32, pooling_mode=pooling), Normalize()], device="cpu")
    st.save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-mean", pooling="mean")


@pytest.fixture(scope="session")
def tiny_bge_dir(tmp_path_factory) -> Path:
    """A tiny CLS-pooling model whose folder name says BGE (for presets and pooling tests)."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bge-small-zh", pooling="cls", seed=1)


@pytest.fixture
def tiny_model(tiny_model_dir):
    from bgetune.models import load_model

    return load_model(str(tiny_model_dir), max_seq_length=64)
