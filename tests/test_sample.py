"""The committed baseline is what the code gives: the shipped sample, run stage by stage in-process with the
repository's params.yaml, reproduces metrics/*.json — the untrained retrievers exactly, the trained ones within a
tolerance (float arithmetic differs a little between CPUs, and training compounds it)."""
import json
import shutil

import pytest

from bgetune.params import load_params
from conftest import REPO, run_steps

pytestmark = pytest.mark.integration
EXACT = 1e-6
TRAINED = 0.05   # NDCG@10 and friends on 40 test queries: two queries moving one rank


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    shutil.copytree(REPO / "data" / "raw", root / "data" / "raw")
    shutil.copytree(REPO / "data" / "stage2", root / "data" / "stage2")
    shutil.copytree(REPO / "data" / "vocab", root / "data" / "vocab")
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    params = load_params(root / "params.yaml")
    run_steps(root, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "merge"))
    from bgetune.steps import evaluate

    for name in ("base", "finetuned", "merged", "bm25"):
        evaluate.run(params, name, root, progress=False)
    return root


@pytest.mark.parametrize("name, tolerance", [("bm25", EXACT), ("base", EXACT), ("finetuned", TRAINED),
                                             ("merged", TRAINED)])
def test_committed_sample_metrics_are_what_the_code_gives(sample, name, tolerance):
    committed = json.loads((REPO / "metrics" / f"{name}.json").read_text())
    measured = json.loads((sample / "metrics" / f"{name}.json").read_text())
    assert set(committed) == set(measured)
    for key, value in committed.items():
        assert measured[key] == pytest.approx(value, abs=tolerance), (name, key)


def test_the_sample_runs_with_no_passage_cut(sample):
    lengths = json.loads((sample / "results" / "data.json").read_text())["lengths"]
    assert lengths["passages"]["over_limit"] == 0 and lengths["queries"]["over_limit"] == 0
