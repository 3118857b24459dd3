"""The DVC build graph as its users drive it, on a tiny project: dvc.yaml's deps are the code each stage runs,
`dvc repro` re-runs exactly what a change touches, the run-cache restores earlier results, experiments queue,
a remote shares results with a fresh clone, and the plots render offline."""
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, write_project
from import_closure import STAGE_SCRIPTS, closure, code_deps, expand

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DVC_YAML = yaml.safe_load((REPO / "dvc.yaml").read_text())


def stage_body(name):
    body = DVC_YAML["stages"][name]
    return body["do"] if "do" in body else body


@pytest.mark.parametrize("stage", sorted(STAGE_SCRIPTS))
def test_each_stage_lists_exactly_the_code_it_imports(stage):
    """Every module of the stage script's import closure (lazy imports included) is a dep, and nothing else:
    editing code always re-runs what it affects. `python tests/import_closure.py` rewrites dvc.yaml's code deps."""
    script = REPO / "stages" / f"{STAGE_SCRIPTS[stage]}.py"
    listed = [d for d in stage_body(stage)["deps"] if str(d).endswith(".py") or str(d).startswith("src/")]
    assert expand(listed) == closure(script), sorted(expand(listed) ^ closure(script))
    assert sorted(listed) == code_deps(script)


@pytest.mark.parametrize("module, stage", [("split", "split"), ("qa_gen", "qa-gen"), ("vocab", "vocab"),
                                           ("mine_negatives", "mine-negatives"), ("train", "train"),
                                           ("rerank", "rerank"), ("merge", "merge"), ("report", "report"),
                                           ("publish", "publish")])
def test_each_stage_declares_the_outputs_its_module_writes(module, stage):
    outs = importlib.import_module(f"bgetune.steps.{module}").OUTS
    declared = [next(iter(o)) if isinstance(o, dict) else o for o in stage_body(stage).get("outs", [])]
    declared += [next(iter(o)) if isinstance(o, dict) else o for o in stage_body(stage).get("metrics", [])]
    assert sorted(declared) == sorted(outs)


def test_evaluate_stages_declare_what_evaluate_writes():
    from bgetune.steps.evaluate import outputs

    for name, dense in (("finetuned", True), ("bm25", False)):
        body = stage_body("evaluate") if dense else stage_body("evaluate-bm25")
        declared = [next(iter(o)) if isinstance(o, dict) else o for o in body["outs"] + body["metrics"]]
        assert sorted(d.replace("${item}", name) for d in declared) == sorted(outputs(name, dense))


# ------------------------------------------------------------------------------------------- a real project


def run(cmd, cwd, env, check=True, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def environment():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                DVC_NO_ANALYTICS="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import build_tiny_model

    root = tmp_path_factory.mktemp("project")
    model = build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", pooling="mean")
    write_project(root, model, with_code=True, merge={"search": "grid", "grid": [0.0, 0.5, 1.0]})
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    env = environment()
    run(["git", "init", "-q", "-b", "main"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.check_update", "false"], root, env)
    first = run(["dvc", "repro"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline"], root, env)
    return root, env, first


@pytest.mark.integration
def test_repro_runs_every_stage_then_nothing(project):
    root, env, first = project
    assert stages_run(first) == {"split", "qa-gen", "vocab", "mine-negatives", "train", "rerank", "merge",
                                 "evaluate-base", "evaluate@finetuned", "evaluate@merged", "evaluate-bm25", "report",
                                 "publish"}
    assert stages_run(run(["dvc", "repro"], root, env)) == set()
    shown = run(["dvc", "metrics", "show"], root, env)
    assert max(len(line) for line in shown.splitlines()) <= 120, shown   # fits a 120-column terminal
    assert "metrics/finetuned.json" in shown and "seconds" not in shown
    tracked = run(["git", "ls-files"], root, env).split()
    assert {"dvc.lock", "metrics/finetuned.json", "metrics/bm25.json"} <= set(tracked)   # the committed baseline
    assert not any(t.startswith(("results/", "models/", "data/pairs")) and not t.endswith(".gitignore")
                   for t in tracked)                                                       # DVC-cached instead


@pytest.mark.integration
def test_a_train_param_reruns_only_downstream_and_the_run_cache_brings_the_old_result_back(project):
    root, env, _ = project
    before = json.loads((root / "metrics" / "finetuned.json").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"]["lr"] = params["train"]["lr"] * 4
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    ran = stages_run(run(["dvc", "repro"], root, env))
    # rerank reads models/finetuned even when off (it then rewrites the same note, so nothing after it reruns for it)
    assert {"train", "evaluate@finetuned"} <= ran <= {"train", "rerank", "merge", "evaluate@finetuned",
                                                       "evaluate@merged", "report", "publish"}
    diff = run(["dvc", "metrics", "diff", "HEAD"], root, env)
    assert "metrics/finetuned.json" in diff and "Change" in diff       # a short table of what moved
    run(["git", "checkout", "params.yaml"], root, env)
    again = run(["dvc", "repro"], root, env)
    assert "Stage 'train' is cached - skipping run" in again           # restored, not retrained
    assert json.loads((root / "metrics" / "finetuned.json").read_text()) == before


@pytest.mark.integration
def test_a_param_reruns_only_the_stages_that_read_it(project):
    root, env, _ = project
    original = (root / "params.yaml").read_text()
    try:
        set_key = yaml.safe_load(original)
        set_key["eval"]["pair_negatives"] = 5             # read by the evaluate stages, not by merge
        (root / "params.yaml").write_text(yaml.safe_dump(set_key, allow_unicode=True))
        status = json.loads(run(["dvc", "status", "--json"], root, env))
        assert set(status) == {"evaluate-base", "evaluate@finetuned", "evaluate@merged"}   # not BM25, not merge
        assert all("eval" in str(v) for v in status.values())
    finally:
        (root / "params.yaml").write_text(original)


@pytest.mark.integration
def test_after_a_failed_experiment_the_last_results_come_back(project):
    root, env, _ = project
    before = json.loads((root / "results" / "train.json").read_text())
    failed = run(["dvc", "exp", "run", "-S", "train.temperature=1e-45"], root, env, check=False)
    assert "non-finite loss" in failed and "Traceback" not in failed
    run(["git", "checkout", "params.yaml", "metrics"], root, env)
    run(["dvc", "checkout"], root, env)       # cached outputs: DVC restores what the failed run removed
    assert json.loads((root / "results" / "train.json").read_text()) == before
    assert "up to date" in run(["dvc", "status"], root, env)


@pytest.mark.integration
def test_editing_a_stage_module_reruns_that_stage_and_its_descendants_only(project):
    root, env, _ = project
    module = root / "src" / "bgetune" / "steps" / "merge.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        status = json.loads(run(["dvc", "status", "--json"], root, env))
        assert set(status) == {"merge"}
        ran = stages_run(run(["dvc", "repro"], root, env))
        assert "merge" in ran and ran <= {"merge", "evaluate@merged", "report", "publish"}
    finally:
        module.write_text(original)
        run(["dvc", "repro"], root, env)


@pytest.mark.integration
def test_a_word_list_or_dictionary_in_data_vocab_reruns_the_vocab_stage(project):
    root, env, _ = project
    word_list = root / "data" / "vocab" / "terms.txt"
    try:
        word_list.write_text("红猫\n", encoding="utf-8")   # unused until vocab.term_file names it, but a dep
        status = json.loads(run(["dvc", "status", "--json"], root, env))
        assert set(status) == {"vocab"} and "data/vocab" in str(status["vocab"])
    finally:
        word_list.unlink()
    assert "up to date" in run(["dvc", "status"], root, env)


@pytest.mark.integration
def test_a_queued_sweep_of_two_trials_runs_and_shows_only_what_changed(project):
    root, env, _ = project
    for lr in ("1e-4", "2e-4"):
        run(["dvc", "exp", "run", "--queue", "-S", f"train.lr={lr}"], root, env)
    run(["dvc", "queue", "start", "-j", "1"], root, env)
    deadline = time.time() + 900
    while time.time() < deadline:
        status = run(["dvc", "queue", "status"], root, env)
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert status.count("Success") == 2, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root, env))
    experiments = [e for rev in shown for branch in (rev.get("experiments") or []) for e in branch.get("revs", [])]
    lrs = sorted(e["data"]["params"]["params.yaml"]["data"]["train"]["lr"] for e in experiments)
    assert lrs == [1e-4, 2e-4]
    assert all(e["data"]["metrics"]["metrics/finetuned.json"]["data"]["ndcg@10"] >= 0 for e in experiments)
    header = run(["dvc", "exp", "show", "--only-changed", "--csv"], root, env).splitlines()[0].split(",")
    assert "train.lr" in header and "model.base" not in header and "seed" not in header
    assert len(header) < 30, header   # a handful of columns, not every param and metric


@pytest.mark.integration
def test_a_teammates_clone_pulls_the_results_and_has_nothing_to_run(project, tmp_path):
    root, env, _ = project
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "team", str(remote)], root, env)
    run(["git", "commit", "-qam", "remote"], root, env)
    run(["dvc", "push"], root, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    run(["dvc", "pull"], clone, env)
    assert (clone / "models" / "finetuned" / "model.safetensors").exists()
    assert "up to date" in run(["dvc", "status"], clone, env)
    assert stages_run(run(["dvc", "repro"], clone, env)) == set()


@pytest.mark.integration
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (make setup installs Debian's chromium)")
@pytest.mark.skipif(not (REPO / ".dvc" / "plots" / "offline.html").exists(),
                    reason="no offline plot template: make setup makes it with npm (tools/offline_plots.py)")
def test_dvc_plots_render_offline_in_chromium(project, tmp_path):
    root, env, _ = project
    (root / ".dvc" / "plots").mkdir(exist_ok=True)
    shutil.copy(REPO / ".dvc" / "plots" / "offline.html", root / ".dvc" / "plots" / "offline.html")
    run(["dvc", "config", "--local", "plots.html_template", "plots/offline.html"], root, env)
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], root, env)
    page = tmp_path / "plots" / "index.html"
    html = page.read_text()
    assert "cdn.jsdelivr" not in html and "https://" not in html.split("<body>")[0][:2000]
    # Network off: every host resolves nowhere and the proxy is a closed port.
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic", "--proxy-server=127.0.0.1:9",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    vega_plots = [p for p in DVC_YAML["plots"] if isinstance(p, dict)]
    drawn = len(re.findall(r'<canvas[^>]*class="marks"', dom.stdout))
    assert drawn == len(vega_plots), dom.stdout[:2000]
