"""bench/train_speed.py: a failed engine run is recorded and leaves its repeat unpaired, never mispaired."""
from __future__ import annotations

import argparse
import json

import pytest


@pytest.fixture(scope="module")
def train_speed(load_bench):
    return load_bench("train_speed")


def run(engine: str, repeat: int, speed: float) -> dict:
    return {"engine": engine, "shape": "base", "repeat": repeat, "texts_per_second": speed, "seconds_per_step": 1.0,
            "peak_memory_mb": 100.0, "gpu": "NVIDIA H200", "precision": "bf16", "tokens_per_step": 288 * 300}


def settings(**overrides) -> argparse.Namespace:
    values = dict(shapes=["base"], engines=["bgetune", "sentence_transformers", "flagembedding"], batch_size=32,
                  group_size=8, peak_tflops=None, query_length=64, passage_length=512, steps=10, repeats=2)
    return argparse.Namespace(**{**values, **overrides})


def test_ratios_pair_the_same_repeat_and_a_failed_run_leaves_its_repeat_out(train_speed):
    runs = [run("bgetune", 0, 100.0), run("bgetune", 1, 120.0), run("flagembedding", 1, 60.0),
            run("sentence_transformers", 0, 50.0), run("sentence_transformers", 1, 40.0)]
    rows = {r["engine"]: r for r in train_speed.summarise(settings(), runs)}
    assert rows["flagembedding"]["bgetune_ratio_range"] == [2.0, 2.0]           # repeat 1 only: 120 / 60
    assert rows["sentence_transformers"]["bgetune_ratio_range"] == [2.0, 3.0]   # 100 / 50 and 120 / 40
    assert rows["bgetune"]["repeats"] == 2 and rows["flagembedding"]["repeats"] == 1
    assert 0 < rows["bgetune"]["mfu"] < 1                                       # the H200's bf16 peak is known


def test_a_failed_worker_is_recorded_with_its_last_error_line(train_speed, monkeypatch, tmp_path):
    class Done:
        returncode, stdout = 1, "starting\n"
        stderr = ("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory.\n\n"
                  "  9%|▉         | 1/11 [00:03<00:39,  3.92s/it]\n")     # a progress bar printed after it

    monkeypatch.setattr(train_speed.subprocess, "run", lambda *a, **k: Done())
    failures = []
    assert train_speed.spawn("flagembedding", "--worker-shape", "large", failures=failures) is None
    assert failures == [{"worker": "flagembedding", "args": ["--worker-shape", "large"],
                         "error": "torch.OutOfMemoryError: CUDA out of memory."}]
    with pytest.raises(SystemExit, match="flagembedding"):
        train_speed.spawn("flagembedding", "--worker-shape", "large")
    train_speed.write(settings(out=str(tmp_path), precision="auto"), [run("bgetune", 0, 100.0)], [], [], failures)
    record = json.loads((tmp_path / "train_speed_nvidia_h200.json").read_text())
    assert record["failed"] == failures and "torch" in record["machine"]
    assert "Failed: flagembedding --worker-shape large: torch.OutOfMemoryError" in \
        (tmp_path / "train_speed_nvidia_h200.md").read_text()
