"""Where models run and in what precision: the logic on a CPU; what needs a GPU runs only where there is one."""
import pytest
import torch

from bgetune.device import (DeviceError, _warn_emulated_bf16, check_device_name, resolve_device, resolve_precision,
                            runtime, trainer_precision_args)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_picks_the_cpu_here_and_an_explicit_missing_gpu_is_an_error():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto") in (expected, "mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU is visible"):
            resolve_device("cuda")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        check_device_name("gpu")


@pytest.mark.parametrize("requested, device, bf16_ok, expected", [
    ("auto", "cpu", False, "fp32"),          # a CPU trains in fp32
    ("auto", "cuda", True, "bf16"),          # Ampere and newer: bf16
    ("auto", "cuda", False, "fp16"),         # older GPUs: fp16 with loss scaling
    ("bf16", "cpu", False, "bf16"),          # bf16 autocast runs on a CPU too
    ("fp32", "cuda", True, "fp32"),
])
def test_precision_resolution(requested, device, bf16_ok, expected):
    assert resolve_precision(requested, device, bf16_ok=bf16_ok) == expected


def test_fp16_selects_loss_scaling_and_is_refused_where_it_cannot_run():
    assert trainer_precision_args("fp16") == {"bf16": False, "fp16": True}   # the Trainer's GradScaler
    assert trainer_precision_args("bf16") == {"bf16": True, "fp16": False}
    assert trainer_precision_args("fp32") == {"bf16": False, "fp16": False}
    with pytest.raises(DeviceError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(DeviceError, match="bf16 is not supported by this GPU"):
        resolve_precision("bf16", "cuda", bf16_ok=False)


def test_bf16_on_a_cpu_without_native_bf16_warns(tmp_path, caplog):
    from bgetune.device import cpu_bf16_native

    flags = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma{}\n"
    for extra, expected in [("", False), (" avx512f avx512_bf16", True), (" amx_bf16", True)]:
        (tmp_path / "cpuinfo").write_text(flags.format(extra))
        assert cpu_bf16_native(tmp_path / "cpuinfo") is expected
    (tmp_path / "arm").write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert cpu_bf16_native(tmp_path / "arm") is True
    assert cpu_bf16_native(tmp_path / "missing") is None
    _warn_emulated_bf16.cache_clear()   # said once per process: another test may have said it already
    with caplog.at_level("WARNING", logger="bgetune"):
        assert resolve_precision("bf16", "cpu", cpu_bf16=False) == "bf16"     # allowed, but said
        assert resolve_precision("bf16", "cpu", cpu_bf16=False) == "bf16"     # preflight, then the stage: once
    assert "without native bf16" in caplog.text and "use fp32" in caplog.text
    assert len([r for r in caplog.records if "without native bf16" in r.getMessage()]) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="bgetune"):
        resolve_precision("bf16", "cpu", cpu_bf16=True)
        resolve_precision("auto", "cpu", cpu_bf16=False)
    assert caplog.text == ""


def test_runtime_records_versions():
    info = runtime("cpu", "fp32")
    assert info["torch"] == torch.__version__ and info["device"] == "cpu" and info["precision"] == "fp32"
    assert "cuda" in info and info["cpu_threads"] >= 1


@CUDA
def test_training_and_encoding_on_the_gpu_in_bf16(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.params import TrainParams
    from bgetune.records import TrainExample
    from bgetune.search import build_index, encode, gpu_search_available, index_location
    from bgetune.training.trainer import fit

    device = resolve_device("auto")
    precision = resolve_precision("auto", device)
    model = load_model(str(tiny_model_dir), device)
    texts = ["red cat", "blue dog", "green fish"]
    full = encode(model, texts, progress=False)
    half = encode(model, texts, progress=False, precision=precision)
    assert abs(full - half).max() < 0.05
    examples = [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=["bird bird"], neg_ids=["b"])
                for a in ("cat", "dog", "fish")]
    summary = fit(model, examples, TrainParams(epochs=2, batch_size=3, train_group_size=2, checkpoint_every=0),
                  seed=0, device=device, precision=precision, progress=False)
    assert summary["first_loss"] == summary["first_loss"]   # finite
    if gpu_search_available():
        assert index_location(build_index(full, "flat", device=device)) == "gpu"


def gpu_project(root, model_dir, monkeypatch, vocab: dict | None = None, **sections):
    """A tiny project for the GPU tests, as a GPU image with the training libraries and no more can run it: a project
    dictionary rather than the bundled one, and the DVCLive curves (device-independent; tests/test_steps.py checks
    them) recorded rather than written. Returns the project folder and the list the curves' stages are recorded in."""
    from pathlib import Path

    import bgetune.training.curves
    from conftest import write_project

    curves = []

    def record_curves(folder, parts):
        Path(folder).mkdir(parents=True)      # the stage's outputs appear together or not at all
        curves.append(parts)

    monkeypatch.setattr(bgetune.training.curves, "write_curves", record_curves)
    write_project(root, model_dir, vocab={"dictionary": "data/vocab/cedict.txt", **(vocab or {})}, **sections)
    (root / "data" / "vocab" / "cedict.txt").write_text("。 。 [ju4 hao4] /full stop/period/\n", encoding="utf-8")
    return root, curves


@CUDA
def test_the_pipeline_with_device_auto_runs_every_stage_on_the_gpu(tmp_path, tiny_model_dir, monkeypatch):
    """params.yaml's device auto on a GPU machine: mining encodes, training runs and evaluation encodes on the GPU,
    in bf16 where the GPU has it; the saved weights stay fp32 (the Trainer's master copy) and the scores are finite."""
    import math

    from safetensors import safe_open

    from bgetune.params import load_params
    from bgetune.records import read_json
    from bgetune.steps import evaluate
    from conftest import run_steps

    root, curves = gpu_project(tmp_path / "p", tiny_model_dir, monkeypatch)
    params = load_params(root / "params.yaml")
    assert params.model.device == "auto" and params.vocab.init == "dictionary"
    run_steps(root, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "merge"))
    for name in ("base", "finetuned", "merged"):
        evaluate.run(params, name, root, progress=False)
    expected = resolve_precision("auto", "cuda")
    assert read_json(root / "results" / "mining.json")["runtime"]["device"] == "cuda"
    train = read_json(root / "results" / "train.json")
    assert (train["runtime"]["device"], train["runtime"]["precision"]) == ("cuda", expected)
    assert math.isfinite(train["stage1"]["loss_curve"][-1]["loss"])
    assert [name for name, _ in curves[0]] == ["stage1"] and curves[0][0][1]["steps"] == train["stage1"]["steps"]
    for name in ("base", "finetuned", "merged"):
        full = read_json(root / "results" / "eval" / f"{name}.json")
        assert full["runtime"]["device"] == "cuda" and 0.0 <= full["passage"]["ndcg@10"] <= 1.0
    with safe_open(str(root / "models" / "finetuned" / "model.safetensors"), "pt") as weights:
        assert {str(weights.get_slice(k).get_dtype()) for k in weights.keys()} == {"F32"}


@CUDA
def test_the_optional_training_paths_run_on_the_gpu(tmp_path, tiny_model_dir, monkeypatch):
    """What the default pipeline leaves off, with device auto on a GPU: the masked-LM warm-up of new rows, hybrid
    distillation, LoRA with validation, a second stage and LM-Cocktail's merge by examples."""
    import json
    import math

    from bgetune.params import load_params
    from bgetune.records import read_json
    from conftest import run_steps

    root = tmp_path / "p"
    (root / "data" / "stage2").mkdir(parents=True)
    (root / "data" / "stage2" / "labelled.jsonl").write_text("\n".join(json.dumps(
        {"query": f"which {t}", "pos": [f"the {t} is here"], "neg": ["nothing"]}) for t in ["red cat", "blue dog"]))
    gpu_project(root, tiny_model_dir, monkeypatch, vocab={"warmup_steps": 2, "warmup_batch_size": 4},
                mining={"teacher": "hybrid"},
                train={"method": "lora", "eval_every": 2, "distill_weight": 0.5,
                       "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
                       "stage2": {"enabled": True, "epochs": 1}},
                merge={"search": "examples", "examples": 4})
    params = load_params(root / "params.yaml")
    summaries = run_steps(root, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "merge"))
    warmup = read_json(root / "results" / "vocab.json")
    assert warmup["runtime"] == {**warmup["runtime"], "device": "cuda", "precision": resolve_precision("auto", "cuda")}
    assert warmup["warmup"]["steps"] == 2 and math.isfinite(warmup["warmup"]["final_loss"])
    train = read_json(root / "results" / "train.json")
    assert train["runtime"]["device"] == "cuda" and train["method"] == "lora" and train["lora"]["adapter_saved"]
    assert train["stage2"]["examples"] == 2 and train["stage1"]["validation"]["history"]
    assert all(math.isfinite(p["loss"]) for part in ("stage1", "stage2") for p in train[part]["loss_curve"])
    assert train["distillation"]["weight"] == 0.5
    assert summaries["merge"]["search"]["mode"] == "examples" and \
        all(math.isfinite(x) for x in summaries["merge"]["search"]["losses"])
