from pathlib import Path

import pytest
import yaml

from bgetune.params import Params, ParamsError, load_params, params_from_dict

REPO = Path(__file__).resolve().parents[1]


def leaves(value, prefix=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), list(value) if isinstance(value, tuple) else value


def test_schema_defaults_equal_params_yaml_key_by_key():
    """One source of defaults: a key missing from params.yaml behaves exactly as the file documents it."""
    written = dict(leaves(yaml.safe_load((REPO / "params.yaml").read_text())))
    defaults = dict(leaves(Params().model_dump()))
    # eval.general.data takes every data.* key; params.yaml shows only raw_dir there.
    documented = {k for k in defaults if not k.startswith("eval.general.data.") or k == "eval.general.data.raw_dir"}
    assert set(written) == documented, (set(written) ^ documented)
    different = {k: (written[k], defaults[k]) for k in written if written[k] != defaults[k]}
    assert different == {}, different
    assert load_params(REPO / "params.yaml") == Params()


def test_params_yaml_lists_every_mining_strategy_so_an_experiment_can_set_one():
    # `dvc exp run -S mining.weights.tfidf=0.3` fails on a key params.yaml lacks ("Key 'tfidf' is not in struct")
    from bgetune.params.modelling import STRATEGIES

    weights = yaml.safe_load((REPO / "params.yaml").read_text())["mining"]["weights"]
    assert list(weights) == list(STRATEGIES) and {k for k, w in weights.items() if w > 0} == {"dense", "bm25"}


@pytest.mark.parametrize("raw, key", [
    ({"train": {"lr_rate": 1e-5}}, "train.lr_rate"),
    ({"mining": {"hard_ratio": 1.5}}, "mining.hard_ratio"),
    ({"train": {"batch_size": "large"}}, "train.batch_size"),
    ({"model": {"base": "models/does-not-exist"}}, "model.base"),
    ({"model": {"device": "gpu"}}, "model.device"),
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"mining": {"dense": {"rank_min": 50, "rank_max": 10}}}, "mining.dense"),
    ({"mining": {"weights": {"dense": 1, "bm52": 1}}}, "mining.weights"),
    ({"eval": {"k_values": []}}, "eval.k_values"),
    ({"eval": {"k_values": [0, 10]}}, "eval.k_values"),
    ({"eval": {"hybrid": {"weights": [1.0]}}}, "eval.hybrid.weights"),
    ({"eval": {"windows": {"max_chars": 60, "overlap_chars": 60}}}, "eval.windows"),
    ({"eval": {"windows": {"max_chars": -1}}}, "eval.windows.max_chars"),
    ({"merge": {"weights": [0.5]}}, "merge.weights"),
    ({"qa_gen": {"llm": {"base_url": "ftp://x"}}}, "qa_gen.llm.base_url"),
    ({"train": {"eval_every": 20, "checkpoint_every": 30}}, "train"),
    ({"train": {"optimizer": "lion"}}, "train.optimizer"),
    ({"train": {"optimizer": "schedule_free_adamw", "backend": "flagembedding"}}, "train"),
    ({"train": {"batch_by": "topic"}}, "train.batch_by"),
    ({"train": {"distill_temperature": 0}}, "train.distill_temperature"),
    ({"train": {"distill_temperature": "hot"}}, "train.distill_temperature"),
    ({"train": {"batch_by": "domain", "backend": "flagembedding", "hardness_mode": "off"}}, "train.batch_by: domain"),
    ({"vocab": {"init": "noise", "init_known_characters": True}}, "vocab"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_params_name_the_key(raw, key):
    with pytest.raises(ParamsError) as err:
        params_from_dict(raw, source="params.yaml")
    assert key in str(err.value) and "params.yaml" in str(err.value)
    assert "\n" not in str(err.value)     # one line


@pytest.mark.parametrize("split, message", [
    ({"train": 0.5, "val": 0.1, "test": 0.1}, "must be 1.0"),
    ({"train": 0.8, "val": 0.2, "test": 0.0}, "split.test must be > 0"),
    ({"train": 0.0, "val": 0.5, "test": 0.5}, "split.train must be > 0"),
])
def test_split_ratios_are_checked_before_any_work(split, message):
    with pytest.raises(ParamsError, match=message):
        params_from_dict({"split": split})


def test_what_needs_val_pairs_needs_a_val_split():
    with pytest.raises(ParamsError, match="train.eval_every needs val pairs"):
        params_from_dict({"split": {"train": 0.8, "val": 0.0, "test": 0.2}, "train": {"eval_every": 10}})
    with pytest.raises(ParamsError, match="eval.windows.tune needs val pairs"):
        params_from_dict({"split": {"train": 0.8, "val": 0.0, "test": 0.2}, "merge": {"search": "off"},
                          "eval": {"hybrid": {"tune": False}, "windows": {"max_chars": 80}}})
    with pytest.raises(ParamsError, match="merge.search needs val pairs"):
        params_from_dict({"split": {"train": 0.8, "val": 0.0, "test": 0.2}, "merge": {"search": "grid"}})
    no_val = {"split": {"train": 0.8, "val": 0.0, "test": 0.2}, "merge": {"search": "off"},
              "eval": {"hybrid": {"tune": False}, "windows": {"max_chars": 0}}}
    with pytest.raises(ParamsError, match=r"eval.term_weights.tune needs val pairs.*\(or eval.term_weights.tune: false"):
        params_from_dict(no_val)
    # Without val nothing chooses: the weights always (tune false), never (off), or no hybrid to weigh them for.
    for term_weights, hybrid in (({"tune": False}, {}), ({"method": "off"}, {}), ({}, {"enabled": False})):
        params_from_dict({**no_val, "eval": {"hybrid": {"tune": False, **hybrid}, "windows": {"max_chars": 0},
                                             "term_weights": term_weights}})


def test_a_bare_off_in_yaml_means_off():
    assert params_from_dict({"merge": {"search": False}}).merge.search == "off"


def test_existing_local_model_folder_is_accepted(tiny_model_dir):
    assert params_from_dict({"model": {"base": str(tiny_model_dir)}}).model.base == str(tiny_model_dir)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train:\n  lr: [unclosed\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+: not valid YAML"):
        load_params(bad)
    bad.write_text(yaml.safe_dump({"train": {"epochs": 0}}))
    with pytest.raises(ParamsError, match="train.epochs"):
        load_params(bad)
