"""Shared test set-up: one torch thread, no hub, and tiny random-initialised BERT models built in seconds."""
from __future__ import annotations

import importlib.util
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="session")
def load_bench():
    """Import a ``bench/`` script as a module: ``load_bench("step_speed")``. bench/ is not a package and its scripts
    import each other by name (``import domain_runs as runs``), so bench/ goes on sys.path and the module is
    registered under its own name."""
    def load(name: str):
        if str(BENCH) not in sys.path:
            sys.path.insert(0, str(BENCH))
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return load

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A small vocabulary: ASCII letters and digits, some words, and a few CJK characters (the rest will be [UNK]).
BASE_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789") + list("的是在了一")
WORDS = ["the", "cat", "dog", "fish", "bird", "red", "blue", "green", "big", "small", "apple", "banana"]


def build_tiny_model(folder: Path, pooling: str = "mean", seed: int = 0, extra_tokens: list[str] | None = None,
                     sentence_transformers_folder: bool = True, dropout: float = 0.1) -> Path:
    """Write a random-initialised 2-layer BERT (hidden 32) with its tokenizer to ``folder``; optionally wrap it as a
    sentence-transformers folder with ``pooling`` and normalisation. ``dropout`` 0 makes a forward pass independent
    of how a batch is split (multi-process tests)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokens = SPECIAL + BASE_CHARS + ["##" + c for c in BASE_CHARS[:36]] + WORDS + list(extra_tokens or [])
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
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


def build_tiny_xlmr(folder: Path, seed: int = 0, pieces: list[str] | None = None, reranker: bool = False) -> Path:
    """Write a random-initialised 2-layer XLM-RoBERTa (bge-m3's architecture) with a SentencePiece-style Unigram
    tokenizer as a sentence-transformers folder with CLS pooling. Words start with ``▁`` (``blue`` reads as
    ``▁blue``); ``pieces`` adds entries as written (``血压``: a Chinese word read inside running text).
    ``reranker``: a one-logit sequence classifier in ``folder`` instead (bge-reranker's shape: a cross-encoder)."""
    from transformers import (XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel,
                              XLMRobertaTokenizer)

    vocab = [(t, 0.0) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")] + [("▁", -3.0)]
    vocab += [("▁" + w, -5.0) for w in WORDS + ["the", "is", "here", "and", "where"]]
    vocab += [(c, -8.0) for c in BASE_CHARS + list(".,。")] + [(p, -4.0) for p in pieces or []]
    tokenizer = XLMRobertaTokenizer(vocab=vocab)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2, num_labels=1)
    if reranker:   # wider initial weights: logits that differ by more than rounding
        config.initializer_range = 0.5
        XLMRobertaForSequenceClassification(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return folder
    raw = folder.with_name(folder.name + "-raw")
    XLMRobertaModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(raw), max_seq_length=64)
    st = SentenceTransformer(modules=[transformer, Pooling(32, pooling_mode="cls"), Normalize()], device="cpu")
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

    return load_model(str(tiny_model_dir), query_max_length=32, passage_max_length=64)


REPO = Path(__file__).resolve().parents[1]


def tiny_squad(topics: int = 8) -> dict:
    """A small SQuAD file: 8 articles of two paragraphs, one question each (English words the tiny BERT knows,
    and a few CJK characters it does not, so vocabulary expansion has work to do)."""
    names = ["red cat", "blue dog", "green fish", "small bird", "big apple", "banana", "red dog", "blue fish",
             "green cat", "small dog", "big fish", "red bird"]
    articles = []
    for i, topic in enumerate(names[:topics]):
        paragraphs = [
            {"context": f"the {topic} is here. 的 {topic} 是 {i}。",
             "qas": [{"id": f"a{i}q0", "question": f"where is the {topic}", "answers": []}]},
            {"context": f"{topic} {i} 在 一 了. the {topic} and the {topic}.",
             "qas": [{"id": f"a{i}q1", "question": f"{topic} {i}", "answers": []}]},
        ]
        articles.append({"title": topic, "paragraphs": paragraphs})
    return {"data": articles}


def tiny_params(model_dir: Path, **sections) -> dict:
    """params.yaml for a tiny project: the repo's params with small sizes; ``sections`` update them (deeply)."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    small = {
        "model": {"base": str(model_dir), "query_max_length": 16, "passage_max_length": 32},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "mining": {"num_negatives": 3, "encode_batch_size": 8, "dense": {"rank_min": 2, "rank_max": 10}},
        "train": {"epochs": 1, "batch_size": 4, "log_every": 1, "checkpoint_every": 0},
        "eval": {"k_values": [1, 5, 10]},
    }
    for update in (small, sections):
        _deep_update(params, update)
    return params


def _deep_update(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def write_project(root: Path, model_dir: Path, with_code: bool = False, **sections) -> Path:
    """A project folder: data/raw/tiny.json, params.yaml and, ``with_code``, the stages, dvc.yaml and src (for
    `dvc repro` and stage subprocesses)."""
    import json
    import shutil

    import yaml

    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (root / "data" / "raw" / "tiny.json").write_text(json.dumps(tiny_squad(), ensure_ascii=False))
    (root / "data" / "stage2").mkdir(exist_ok=True)
    (root / "data" / "stage2" / "README.md").write_text("stage-2 pairs go here\n")
    (root / "data" / "vocab").mkdir(exist_ok=True)
    (root / "data" / "vocab" / "README.md").write_text("word lists and dictionaries go here\n")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(model_dir, **sections), allow_unicode=True))
    if with_code:
        for name in ("dvc.yaml", "stages", "src"):
            source = REPO / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name,
                                                                 **({"ignore": shutil.ignore_patterns(
                                                                     "*.egg-info", "__pycache__")}
                                                                    if source.is_dir() else {}))
    return root


def run_steps(root: Path, params, names=("split", "qa_gen", "vocab", "mine_negatives")) -> dict:
    """Run stage functions in order, in-process; returns each one's summary."""
    import importlib

    out = {}
    for name in names:
        module = importlib.import_module(f"bgetune.steps.{name}")
        out[name] = module.run(params, root, progress=False)
    return out


@pytest.fixture(scope="session")
def mined_project(tmp_path_factory, tiny_model_dir):
    """A tiny project run up to mine-negatives (split, qa-gen, vocab, mine), shared read-only by tests: copy it
    (``copy_project``) before writing to it."""
    from bgetune.params import load_params

    root = write_project(tmp_path_factory.mktemp("mined"), tiny_model_dir)
    run_steps(root, load_params(root / "params.yaml"))
    return root


def copy_project(source: Path, target: Path, **sections) -> Path:
    """A copy of a project, with params updated by ``sections``."""
    import shutil

    import yaml

    shutil.copytree(source, target, dirs_exist_ok=True)
    if sections:
        params = yaml.safe_load((target / "params.yaml").read_text())
        _deep_update(params, sections)
        (target / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    return target
