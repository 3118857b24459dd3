"""train.backend: flagembedding — FlagEmbedding's own trainer, run for real on a tiny project (a few seconds)."""
import json

import torch

from bgetune.params import load_params, params_from_dict
from bgetune.training.flagembedding import flagembedding_command, run_flagembedding
from conftest import copy_project


def test_command_maps_our_params_and_uses_torchrun_for_several_devices():
    params = params_from_dict({"train": {"lr": 3e-5, "batch_size": 8, "train_group_size": 4, "temperature": 0.05,
                                         "max_steps": 7, "gradient_checkpointing": True},
                               "model": {"query_max_length": 48, "passage_max_length": 256}})
    argv = flagembedding_command(params, "base", "train.jsonl", "out", "cls", "为这个句子生成表示：", devices=1,
                                 precision="bf16")
    options = dict(zip(argv[3::2], argv[4::2]))
    assert argv[1:3] == ["-m", "FlagEmbedding.finetune.embedder.encoder_only.base"]
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
                                                              "hardness_mode": "off"},
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
