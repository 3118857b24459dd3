"""train.backend: flagembedding — FlagEmbedding's own trainer, run for real on a tiny project (a few seconds)."""
import io
import json
import math
import os
import sys

import pytest
import torch

from bgetune.params import load_params, params_from_dict
from bgetune.training.curves import write_curves
from bgetune.training.flagembedding import (FlagEmbeddingError, _run, flagembedding_command, run_flagembedding,
                                            trainer_summary)
from conftest import copy_project


def test_command_maps_our_params_and_uses_torchrun_for_several_devices():
    params = params_from_dict({"train": {"lr": 3e-5, "batch_size": 8, "train_group_size": 4, "temperature": 0.05,
                                         "max_steps": 7, "gradient_checkpointing": True},
                               "model": {"query_max_length": 48, "passage_max_length": 256}})
    argv = flagembedding_command(params, "base", "train.jsonl", "out", "cls", "为这个句子生成表示：", devices=1,
                                 precision="bf16")
    options = dict(zip(argv[3::2], argv[4::2]))
    assert argv[1:3] == ["-m", "bgetune.training.flagembedding_main"]   # FlagEmbedding's main + save_state
    assert options["--learning_rate"] == "3e-05" and options["--temperature"] == "0.05"
    assert options["--train_group_size"] == "4" and options["--max_steps"] == "7"
    assert options["--query_max_len"] == "48" and options["--passage_max_len"] == "256"
    assert options["--sentence_pooling_method"] == "cls" and options["--bf16"] == "True"
    assert options["--gradient_checkpointing"] == "True"
    assert options["--query_instruction_for_retrieval"] == "为这个句子生成表示："
    multi = flagembedding_command(params, "base", "train.jsonl", "out", "cls", devices=4)
    assert multi[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"]
    assert multi[multi.index("--negatives_cross_device") + 1] == "True"


def test_flagembedding_backend_trains_and_writes_the_same_kind_of_folder(mined_project, tmp_path):
    from sentence_transformers import SentenceTransformer

    from bgetune.models import pooling_mode

    root = copy_project(mined_project, tmp_path / "p", train={"backend": "flagembedding", "max_steps": 3,
                                                              "batch_size": 2, "train_group_size": 2, "lr": 1e-3,
                                                              "hardness_mode": "off", "log_every": 2},
                        model={"query_instruction": "q: "})
    params = load_params(root / "params.yaml")
    summary = run_flagembedding(params, root)
    assert summary["backend"] == "flagembedding" and summary["pooling"] == "mean"
    folder = root / "models" / "finetuned"
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()
    trained = SentenceTransformer(str(folder), device="cpu")
    assert pooling_mode(trained) == "mean" and trained.prompts["query"] == "q: "
    base = SentenceTransformer(str(root / "models" / "base"), device="cpu")
    key = next(k for k in base.state_dict() if "encoder.layer.0.attention.self.query.weight" in k)
    assert not torch.equal(base.state_dict()[key], trained.state_dict()[key])   # its trainer really trained
    assert json.loads((root / "results" / "train.json").read_text())["backend"] == "flagembedding"
    assert not (root / ".bgetune" / "flagembedding").exists()
    # the Trainer's log history, saved by flagembedding_main, gives the same stage1 record the default backend writes
    stage1 = json.loads((root / "results" / "train.json").read_text())["stage1"]
    # a window of 2 steps, then step 3 alone: logged at the last step (LogTheLastStep), as on the default backend
    assert stage1["steps"] == 3 and [p["step"] for p in stage1["loss_curve"]] == [2, 3]
    assert all(math.isfinite(p["loss"]) and p["loss"] > 0 for p in stage1["loss_curve"])
    assert stage1["first_loss"] == stage1["loss_curve"][0]["loss"] and len(stage1["lr_curve"]) == 2
    assert stage1["final_loss"] == stage1["loss_curve"][1]["loss"]
    loss_tsv = root / "results" / "train_log" / "plots" / "metrics" / "train" / "loss.tsv"
    assert len(loss_tsv.read_text().strip().splitlines()) == 1 + 2   # header + one row per logged window


def test_trainer_summary_reads_steps_and_curves_from_the_trainer_state(tmp_path):
    # a run by epochs (max_steps 0: the Trainer decides the steps) once crashed the curves on steps = None
    state = {"global_step": 12, "max_steps": 12, "log_history": [
        {"epoch": 0.4, "step": 5, "loss": 2.5, "learning_rate": 4e-5, "grad_norm": 3.0},
        {"epoch": 0.8, "step": 10, "loss": 1.25, "learning_rate": 1e-5, "grad_norm": 2.0},
        {"epoch": 1.0, "step": 12, "train_loss": 1.8, "train_runtime": 9.0}]}
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    stage1 = trainer_summary(tmp_path / "trainer_state.json", log_every=5)
    assert stage1["steps"] == 12 and stage1["first_loss"] == 2.5 and stage1["final_loss"] == 1.25
    assert stage1["loss_curve"] == [{"step": 5, "loss": 2.5}, {"step": 10, "loss": 1.25}]
    assert [p["step"] for p in stage1["lr_curve"]] == [5, 10] and stage1["validation"] is None
    write_curves(tmp_path / "train_log", [("stage1", stage1)])
    rows = (tmp_path / "train_log" / "plots" / "metrics" / "train" / "loss.tsv").read_text().strip().splitlines()
    assert rows == ["step\tloss", "5\t2.5", "10\t1.25"]


def test_trainer_summary_without_a_state_file_is_one_clear_error(tmp_path):
    with pytest.raises(FlagEmbeddingError, match="no readable trainer_state.json"):
        trainer_summary(tmp_path / "trainer_state.json", log_every=5)


def test_the_trainer_output_is_passed_through_as_it_comes_and_a_failure_names_its_last_line():
    echo = io.BytesIO()
    script = "import sys; print('{\\'loss\\': \\'0.69\\'}', flush=True); sys.stderr.write('ValueError: bad arg\\n')"
    _run([sys.executable, "-c", script], dict(os.environ), echo=echo)
    assert b"{'loss': '0.69'}" in echo.getvalue() and b"ValueError: bad arg" in echo.getvalue()
    with pytest.raises(FlagEmbeddingError, match=r"exited with 3: ValueError: bad arg$"):
        _run([sys.executable, "-c", script + "; sys.exit(3)"], dict(os.environ), echo=io.BytesIO())
