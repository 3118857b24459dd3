import pytest

from bgetune.models import (BGE_EN_INSTRUCTION, BGE_ZH_INSTRUCTION, ModelReferenceError, check_model_reference,
                            load_model, pooling_mode, query_instruction_for, resolve_model_path)


def test_instruction_presets():
    assert query_instruction_for("BAAI/bge-large-zh-v1.5") == BGE_ZH_INSTRUCTION
    assert query_instruction_for("models/bge-small-en-v1.5") == BGE_EN_INSTRUCTION
    assert query_instruction_for("BAAI/bge-m3") == ""
    assert query_instruction_for("bundled:all-MiniLM-L6-v2") == ""
    assert query_instruction_for("BAAI/bge-large-zh-v1.5", configured="查询：") == "查询："


def test_references_are_checked_without_network(tmp_path):
    check_model_reference("BAAI/bge-base-zh-v1.5")          # a hub id is accepted (loaded later, where a hub is)
    check_model_reference("bundled:all-MiniLM-L6-v2")
    with pytest.raises(ModelReferenceError, match="does not exist"):
        check_model_reference("models/bge-large-zh-v1.5")
    with pytest.raises(ModelReferenceError, match="unknown bundled"):
        check_model_reference("bundled:nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelReferenceError, match="no config.json"):
        check_model_reference(str(tmp_path / "empty"))


def test_bundled_model_resolves_to_a_local_sentence_transformers_folder():
    from pathlib import Path

    folder = Path(resolve_model_path("bundled:all-MiniLM-L6-v2"))
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()


def test_plain_transformers_folder_gets_cls_pooling_for_bge(tmp_path, caplog):
    from conftest import build_tiny_model

    raw = build_tiny_model(tmp_path / "tiny-plain", sentence_transformers_folder=False)
    with caplog.at_level("INFO", logger="bgetune"):
        assert pooling_mode(load_model(str(raw))) == "mean"      # not named BGE: mean, and the log says why
    assert "has no modules.json: pooling mean, as its name does not say BGE (model.pooling sets it)" in caplog.text
    named = raw.rename(tmp_path / "bge-tiny-zh-v1.5")
    model = load_model(str(named))
    assert pooling_mode(model) == "cls"
    assert model.encode(["abc"], normalize_embeddings=False).shape == (1, 32)
    assert pooling_mode(load_model(str(named), pooling="mean")) == "mean"


def test_training_and_evaluation_instructions_can_differ():
    from bgetune.models import instructions
    from bgetune.params import ModelParams

    same = ModelParams()
    assert instructions(same, "BAAI/bge-base-zh-v1.5") == (BGE_ZH_INSTRUCTION, BGE_ZH_INSTRUCTION)
    recipe = ModelParams(train_instruction="")        # train without the instruction, evaluate with it
    assert instructions(recipe, "BAAI/bge-base-zh-v1.5") == ("", BGE_ZH_INSTRUCTION)


def test_lengths_are_set_apart_and_capped_by_the_model(tiny_model_dir):
    from bgetune.models import lengths_of

    model = load_model(str(tiny_model_dir), query_max_length=16, passage_max_length=1000)
    assert lengths_of(model) == (16, 256)                # the tiny BERT has 256 positions
    assert model[0].query_length == 16 and model[0].document_length == 256
