"""bench/merge_variant.py: the merge runs on the variant's own params, with the grid and the other data set."""
from __future__ import annotations

from argparse import Namespace

import pytest


@pytest.fixture(scope="module")
def merge_variant(load_bench):
    return load_bench("merge_variant")


def test_variant_params_are_the_variants_with_the_merge_grid_and_the_other_set(merge_variant):
    args = Namespace(dataset="meddialog", suite="hour", variant="fast_distill_dict_init_300", keep_in_domain=0.95,
                     general_queries=300, general_passages=2000)
    settings = {"steps": 600, "epochs": 3, "batch_size": 16, "chunk_chars": 0, "eval_every": 150}
    params = merge_variant.variant_params(args, settings)
    assert params.vocab.init == "dictionary" and params.vocab.top_terms == 500
    assert params.train.max_steps == 300                      # the variant's steps_factor 0.5 of the suite's 600
    assert params.train.distill_weight == 1.0 and params.mining.teacher == "hybrid"
    assert params.merge.search == "grid" and params.merge.keep_in_domain == 0.95
    assert params.eval.general.data.raw_dir.endswith("cmrc2018")   # meddialog's general set is the other data set
    assert (params.eval.general.max_queries, params.eval.general.max_passages) == (300, 2000)
