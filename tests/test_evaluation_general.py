"""The out-of-domain set (eval.general): what load_general_set keeps, and the line it logs."""
import json
import logging

from bgetune.evaluation.general import load_general_set
from bgetune.params import params_from_dict
from conftest import tiny_squad


def test_general_set_samples_questions_keeps_their_passages_and_says_how_many(tmp_path, caplog):
    source = tmp_path / "general.json"
    source.write_text(json.dumps(tiny_squad(), ensure_ascii=False), encoding="utf-8")   # 16 questions, 16 passages
    general_params = params_from_dict({"eval": {"general": {"data": {"raw_dir": str(source)}, "max_queries": 5,
                                                            "max_passages": 8}}}).eval.general
    with caplog.at_level(logging.INFO, logger="bgetune"):
        general = load_general_set(general_params, seed=42)
    assert len(general.queries) == 5 and len(general.texts) == len(general.ids) == 8
    assert all(relevant <= set(general.ids) for relevant in general.relevant)   # every answer stays findable
    assert f"general set (eval.general): 5 of 16 questions over 8 of 16 passages from {source}" in caplog.messages
    again = load_general_set(general_params, seed=42)
    assert again.queries == general.queries and again.ids == general.ids   # the seed fixes the sample


def test_no_general_set_when_no_folder_is_set():
    assert load_general_set(params_from_dict({}).eval.general, seed=42) is None
