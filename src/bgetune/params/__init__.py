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

import yaml
from pydantic import ValidationError, model_validator

from bgetune.errors import BgetuneError
from bgetune.params.evaluation import (EvalParams, GeneralSetParams, HybridParams, MergeModel, MergeParams,
                                      TermWeightParams, WindowParams)
from bgetune.params.inputs import (ChunkParams, DataParams, HeuristicParams, LlmParams, QaColumns, QaGenParams,
                                   SplitParams)
from bgetune.params.modelling import (LOSS_NAMES, SELECT_BY, STRATEGIES, CrossDomainMiningParams, DenseMiningParams,
                                      GuardParams, KeywordMiningParams, LengthMiningParams, LexicalParams, LoraParams,
                                      MiningParams, ModelParams, RandomMiningParams, RankRange, RerankParams,
                                      Stage2Params, TfidfMiningParams, TrainParams, VocabParams)
from bgetune.params.section import Section

__all__ = ["Params", "ParamsError", "load_params", "params_from_dict", "Section", "DataParams", "QaColumns",
           "ChunkParams", "SplitParams", "HeuristicParams", "LlmParams", "QaGenParams", "ModelParams", "LexicalParams",
           "VocabParams", "MiningParams", "RankRange", "DenseMiningParams", "TfidfMiningParams", "KeywordMiningParams",
           "CrossDomainMiningParams", "LengthMiningParams", "RandomMiningParams", "GuardParams", "LoraParams",
           "Stage2Params", "TrainParams", "RerankParams", "MergeModel", "MergeParams", "HybridParams",
           "TermWeightParams", "WindowParams", "GeneralSetParams", "EvalParams", "STRATEGIES", "LOSS_NAMES",
           "SELECT_BY"]


class Params(Section):
    seed: int = 42
    data: DataParams = DataParams()
    chunk: ChunkParams = ChunkParams()
    split: SplitParams = SplitParams(train=0.7, val=0.1, test=0.2)
    qa_gen: QaGenParams = QaGenParams()
    model: ModelParams = ModelParams()
    lexical: LexicalParams = LexicalParams()
    vocab: VocabParams = VocabParams()
    mining: MiningParams = MiningParams()
    train: TrainParams = TrainParams()
    rerank: RerankParams = RerankParams()
    merge: MergeParams = MergeParams()
    eval: EvalParams = EvalParams()

    def seed_of(self, section: str) -> int:
        """The seed of ``mining``, ``train`` or ``rerank``: its own ``seed`` when set, else the top-level one (which
        also draws the split, so a second run for a model soup sets these and keeps the split)."""
        own = getattr(self, section).seed
        return self.seed if own is None else own

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
        if self.eval.windows.max_chars and self.eval.windows.tune and self.split.val <= 0:
            raise ValueError("eval.windows.tune needs val pairs: set split.val > 0 (or eval.windows.tune: false)")
        if self.rerank.enabled and self.rerank.tune and self.split.val <= 0:
            raise ValueError("rerank.tune needs val pairs: set split.val > 0 (or rerank.tune: false)")
        term_weights = self.eval.term_weights
        if term_weights.method != "off" and term_weights.tune and self.eval.hybrid.enabled and self.split.val <= 0:
            raise ValueError("eval.term_weights.tune needs val pairs: set split.val > 0 (or eval.term_weights.tune: "
                             "false)")
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
