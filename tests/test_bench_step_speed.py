"""bench/step_speed.py: a setting means the same training precision and dropout whatever the variant sets."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def step_speed(load_bench):
    return load_bench("step_speed")


@pytest.mark.parametrize("setting, dropout, precision, chunk", [
    ("chunks_16", None, "auto", 16),
    ("one_pass", None, "auto", 0),
    ("chunks_16_attention_dropout_0", 0.0, "auto", 16),
    ("chunks_16_attention_dropout_0_bf16", 0.0, "bf16", 16),
])
def test_a_setting_overrides_the_variants_precision_and_dropout(step_speed, setting, dropout, precision, chunk):
    from bgetune.params import params_from_dict

    # the variant trains in bf16 without attention dropout; each setting still times what its name says
    params = params_from_dict(step_speed.setting_params("cmrc2018", "levers", "dict_init_terms2000_group2_bf16",
                                                        setting, steps=9, batch_size=16))
    assert (params.train.attention_dropout, params.train.precision, params.train.length_chunk_size) == \
        (dropout, precision, chunk)
    assert params.train.max_steps == 9 and params.train.train_group_size == 2    # timed steps, not the suite's


def test_every_setting_is_a_valid_train_section(step_speed):
    from bgetune.params import params_from_dict

    for name in step_speed.SETTINGS:
        params_from_dict(step_speed.setting_params("meddialog", "levers", "default", name, steps=9, batch_size=16))
