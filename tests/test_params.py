from pathlib import Path

import pytest
import yaml

from bgetune.params import ParamsError, load_params, params_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_yaml_is_valid_and_matches_documented_defaults():
    params = load_params(REPO / "params.yaml")
    assert params.train.temperature == 0.02
    assert params.mining.hard_ratio == 0.7
    assert params.model.base == "bundled:all-MiniLM-L6-v2"
    assert params.split.train + params.split.val + params.split.test == pytest.approx(1.0)


@pytest.mark.parametrize("raw, key", [
    ({"train": {"lr_rate": 1e-5}}, "train.lr_rate"),
    ({"mining": {"hard_ratio": 1.5}}, "mining.hard_ratio"),
    ({"train": {"batch_size": "large"}}, "train.batch_size"),
    ({"model": {"base": "models/does-not-exist"}}, "model.base"),
    ({"mining": {"dense": {"rank_min": 50, "rank_max": 10}}}, "mining.dense"),
    ({"mining": {"weights": {"dense": 1, "bm52": 1}}}, "mining.weights"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_params_name_the_key(raw, key):
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, source="params.yaml")
    assert key in str(err.value)
    assert "params.yaml" in str(err.value)


def test_split_ratios_must_sum_to_one():
    with pytest.raises(ParamsError, match="must be 1.0"):
        params_from_dict({"split": {"train": 0.5, "val": 0.1, "test": 0.1}})


def test_existing_local_model_folder_is_accepted(tiny_model_dir):
    assert params_from_dict({"model": {"base": str(tiny_model_dir)}}).model.base == str(tiny_model_dir)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump({"train": {"epochs": 0}}))
    with pytest.raises(ParamsError, match="train.epochs"):
        load_params(bad)
