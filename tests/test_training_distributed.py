"""train.devices: 2 — the train stage launches torchrun itself; on the CPU (gloo) two processes with the batch split
between them reach the weights of one process with the whole batch (candidates gathered with their ids,
gradients averaged by DDP)."""
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bgetune.params import load_params
from conftest import build_tiny_model, copy_project, run_steps, write_project

pytestmark = pytest.mark.integration


def train_stage(root):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "stages/train.py"], cwd=root, capture_output=True, text=True, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stderr


def test_two_processes_reach_the_weights_of_one_with_the_whole_batch(tmp_path):
    model = build_tiny_model(tmp_path / "tiny-no-dropout", dropout=0.0)   # a forward must not depend on the split
    # 8 training questions with distinct passages: 2 full batches of 4 an epoch, none too short to split in two.
    # Length-sorted chunks of 3 texts: several forward passes per column in each process before one DDP backward.
    base = write_project(tmp_path / "base", model, with_code=True, qa_gen={"sources": ["existing"]},
                         train={"epochs": 2, "lr": 1e-3, "warmup_ratio": 0.0, "temperature": 0.05,
                                "length_chunk_size": 3})
    run_steps(base, load_params(base / "params.yaml"))
    one = copy_project(base, tmp_path / "one", train={"devices": 1, "batch_size": 4})
    two = copy_project(base, tmp_path / "two", train={"devices": 2, "batch_size": 2})
    train_stage(one)
    log = train_stage(two)
    assert "rank 1" in log   # a second process really ran
    import json

    summaries = [json.loads((p / "results" / "train.json").read_text()) for p in (one, two)]
    assert summaries[1]["runtime"]["processes"] == 2 and summaries[0]["runtime"]["processes"] == 1
    assert summaries[0]["stage1"]["steps"] == summaries[1]["stage1"]["steps"] == 4
    assert summaries[1]["stage1"]["global_batch_size"] == summaries[0]["stage1"]["global_batch_size"] == 4
    assert summaries[1]["stage1"]["first_loss"] == pytest.approx(summaries[0]["stage1"]["first_loss"], rel=1e-4)
    a = load_file(str(one / "models" / "finetuned" / "model.safetensors"))
    b = load_file(str(two / "models" / "finetuned" / "model.safetensors"))
    start = load_file(str(base / "models" / "base" / "model.safetensors"))
    for key, value in a.items():
        assert torch.allclose(value, b[key], atol=1e-5), key
    assert any(not torch.allclose(start[k], a[k], atol=1e-4) for k in a if a[k].is_floating_point())
