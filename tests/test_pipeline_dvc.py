"""The real build graph, end to end: `dvc repro` on a tiny config (tiny model, a few documents)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.integration


def tiny_squad() -> dict:
    topics = ["red cat", "blue dog", "green fish", "small bird", "big apple", "banana", "red dog", "blue fish"]
    articles = []
    for i, topic in enumerate(topics):
        paragraphs = [
            {"context": f"the {topic} is here. 的 {topic} 是 {i}。",
             "qas": [{"id": f"a{i}q0", "question": f"where is the {topic}", "answers": []}]},
            {"context": f"{topic} {i} 在 一 了. the {topic} and the {topic}.",
             "qas": [{"id": f"a{i}q1", "question": f"{topic} {i}", "answers": []}]},
        ]
        articles.append({"title": topic, "paragraphs": paragraphs})
    return {"data": articles}


def run(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    for name in ("dvc.yaml", "stages", "src", "data/vocab", "data/stage2"):
        source = REPO / name
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
    shutil.rmtree(root / "src" / "bgetune.egg-info", ignore_errors=True)
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "tiny.json").write_text(json.dumps(tiny_squad(), ensure_ascii=False))
    general = tmp_path_factory.mktemp("general") / "general.json"   # the out-of-domain guard set
    general.write_text(json.dumps({"data": tiny_squad()["data"][:3]}, ensure_ascii=False))
    model = build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", pooling="mean")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"]["base"] = str(model)
    params["model"]["max_seq_length"] = 32
    params["split"] = {"train": 0.5, "val": 0.25, "test": 0.25}
    params["mining"].update(num_negatives=3, encode_batch_size=8)
    params["mining"]["dense"] = {"rank_min": 2, "rank_max": 10}
    params["train"].update(epochs=1, batch_size=4, log_every=1, checkpoint_every=0)
    params["eval"]["k_values"] = [1, 5, 10]
    params["eval"]["general"] = {"data": {"raw_dir": str(general)}, "max_queries": 4}
    params["merge"].update(search=True, grid=[0.0, 0.5, 1.0])
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", GIT_AUTHOR_NAME="t",
               GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    run(["git", "init", "-q"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.check_update", "false"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "init"], root, env)
    first = run(["dvc", "repro"], root, env)
    return root, env, first


def test_repro_runs_every_stage_and_writes_metrics_in_unit_range(project):
    root, _, first = project
    assert stages_run(first) == {"split", "qa-gen", "mine-negatives", "train", "merge", "evaluate@base",
                                 "evaluate@finetuned", "evaluate@merged", "evaluate-bm25", "evaluate-extra",
                                 "report"}
    for name in ("base", "finetuned", "merged", "bm25"):
        metrics = json.loads((root / "metrics" / f"{name}.json").read_text())
        for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
            assert 0.0 <= metrics[key] <= 1.0, (name, key)
        assert metrics["queries"] > 0 and metrics["leaked_test_queries"] == 0
        assert 0.0 <= metrics["ood_ndcg@10"] <= 1.0 and metrics["ood_queries"] == 4
        if name != "bm25":
            assert 0.0 <= metrics["pair_auc"] <= 1.0 and 0.0 <= metrics["hybrid_ndcg@10"] <= 1.0
            assert "noise_similarity_p95" in metrics and (root / "metrics" / "plots" / f"similarity_{name}.png").exists()
    merge = json.loads((root / "metrics" / "merge.json").read_text())
    assert [t["finetuned_weight"] for t in merge["search"]["trials"]] == [0.0, 0.5, 1.0]
    assert merge["weights"]["finetuned"] == merge["search"]["chosen_finetuned_weight"]
    assert "layer 0" in merge["layer_changes"] and (root / "metrics" / "plots" / "layer_changes.png").exists()
    report = (root / "metrics" / "report.html").read_text()
    assert 'data-model="finetuned" data-metric="ndcg@10"' in report and "data:image/png;base64," in report
    significance = json.loads((root / "metrics" / "significance.json").read_text())
    assert set(significance) == {"finetuned_vs_base", "merged_vs_base", "merged_vs_finetuned", "finetuned_vs_bm25",
                                 "merged_vs_bm25"}
    for name, model, reference in (("finetuned_vs_base", "finetuned", "base"), ("merged_vs_bm25", "merged", "bm25")):
        gap = json.loads((root / "metrics" / f"{model}.json").read_text())["ndcg@10"] - json.loads(
            (root / "metrics" / f"{reference}.json").read_text())["ndcg@10"]
        row = significance[name]
        assert abs(row["difference"] - gap) < 1e-5 and row["ci_low"] <= row["difference"] <= row["ci_high"]
    assert f'data-comparison="finetuned_vs_base" data-value="{significance["finetuned_vs_base"]["difference"]!r}"' \
        in report
    finetuned = root / "models" / "finetuned"
    assert (finetuned / "model.safetensors").exists() and (finetuned / "modules.json").exists()
    example = json.loads((root / "data" / "train.jsonl").read_text().splitlines()[0])
    assert {"query", "pos", "neg", "pos_ids", "neg_ids", "neg_strategies"} <= set(example)


def test_second_repro_does_nothing_and_train_param_reruns_only_downstream(project):
    root, env, _ = project
    again = run(["dvc", "repro"], root, env)
    assert stages_run(again) == set()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["lr"] = params["train"]["lr"] * 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    changed = run(["dvc", "repro"], root, env)
    ran = stages_run(changed)
    # evaluate@merged re-runs only when the merged weights changed: the weight search may pick the base (w = 0).
    assert {"train", "merge", "evaluate@finetuned", "report"} <= ran <= {"train", "merge", "evaluate@finetuned",
                                                                          "evaluate@merged", "report"}
    shown = run(["dvc", "metrics", "show", "--json"], root, env)
    assert "ndcg@10" in shown
