"""Checks that can run before any work starts, so a mistake costs seconds, not a training run.

The params schema already rejects wrong keys, types and ranges. These need more than the params: files named in
them exist (inside the project), models can be loaded here, an API key is in the environment. ``check_all`` runs
at the start of the first stage (split); each later stage re-checks what it needs.

Example::

    problems = check_all(params, root=".")   # [] or one line per problem, each naming its param
"""
from __future__ import annotations

import os
from pathlib import Path

from bgetune.params.modelling import LEXICAL_TEACHERS
from bgetune.records import InputError


class PreflightError(InputError):
    """Params that name something missing or unreachable; one line per problem."""


def check_files(params, root: Path) -> list[str]:
    problems = []

    def need(key: str, value: str, kind: str = "file") -> None:
        if not value:
            return
        path = Path(value) if Path(value).is_absolute() else root / value
        if not path.exists():
            problems.append(f"{key}: {value} does not exist")
        elif kind == "file" and not path.is_file():
            problems.append(f"{key}: {value} is a folder, expected a file")

    if not params.data.raw_dir:   # "" would be the project folder itself: its code, models and results as documents
        problems.append("data.raw_dir: empty; name the folder (or file) holding your documents")
    need("data.raw_dir", params.data.raw_dir, "any")
    need("vocab.term_file", params.vocab.term_file)
    if params.vocab.init == "dictionary":
        if params.vocab.dictionary.startswith("bundled:"):
            from bgetune.dictionary import resolve_dictionary_path

            try:
                resolve_dictionary_path(params.vocab.dictionary)
            except InputError as err:   # the message names the param
                problems.append(str(err))
        else:
            need("vocab.dictionary", params.vocab.dictionary)
    need("train.noise_texts", params.train.noise_texts)
    need("eval.noise_texts", params.eval.noise_texts)
    need("eval.general.data.raw_dir", params.eval.general.data.raw_dir, "any")
    if params.qa_gen.llm.prompt not in ("zh", "en") and "llm" in params.qa_gen.sources:
        need("qa_gen.llm.prompt", params.qa_gen.llm.prompt)
    if params.train.stage2.enabled:
        folder = root / params.train.stage2.folder
        if not folder.is_dir() or not any(folder.glob("*.jsonl")):
            problems.append(f"train.stage2.folder: {params.train.stage2.folder} holds no *.jsonl pair files "
                            "(FlagEmbedding format: query, pos, neg), but train.stage2.enabled is true")
    return problems


def check_models(params) -> list[str]:
    from bgetune.models import ModelUnavailableError, check_model_available

    wanted = [("model.base", params.model.base)]
    if params.mining.model:
        wanted.append(("mining.model", params.mining.model))
    if params.mining.teacher and params.mining.teacher not in LEXICAL_TEACHERS:
        wanted.append(("mining.teacher", params.mining.teacher))
    if "llm" in params.qa_gen.sources and params.qa_gen.llm.roundtrip == "dense":
        wanted.append(("qa_gen.llm.roundtrip_model", params.qa_gen.llm.roundtrip_model))
    wanted += [(f"eval.extra_models.{name}", ref) for name, ref in params.eval.extra_models.items()]
    wanted += [(f"merge.models[{i}].path", m.path) for i, m in enumerate(params.merge.models)]
    if params.rerank.enabled and params.rerank.init != "finetuned":
        wanted.append(("rerank.init", params.rerank.init))
    problems = []
    for key, reference in wanted:
        try:
            check_model_available(reference, key)
        except ModelUnavailableError as err:
            problems.append(str(err))
    return problems


def check_environment(params) -> list[str]:
    problems = []
    llm = params.qa_gen.llm
    if "llm" in params.qa_gen.sources and llm.api_key_env and not os.environ.get(llm.api_key_env):
        problems.append(f"qa_gen.llm.api_key_env: environment variable {llm.api_key_env} is not set (keys are read "
                        "from the environment only, never from params.yaml)")
    from bgetune.errors import BgetuneError
    from bgetune.parallel import check_environment_settings

    try:   # the worker settings of bgetune.parallel, read when a stage first segments a corpus
        check_environment_settings()
    except BgetuneError as err:
        problems.append(str(err))
    from bgetune.device import DeviceError, resolve_device

    try:
        device = resolve_device(params.model.device)
    except DeviceError as err:
        problems.append(str(err))
        device = "cpu"
    from bgetune.device import resolve_precision

    for key, value in (("model.precision", params.model.precision), ("train.precision", params.train.precision)):
        try:
            resolve_precision(value, device)
        except DeviceError as err:
            problems.append(f"{key}: {err}")
    return problems


def check_all(params, root: str | Path = ".") -> None:
    problems = check_files(params, Path(root)) + check_environment(params) + check_models(params)
    if problems:
        raise PreflightError("; ".join(problems))
