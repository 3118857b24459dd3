"""train.backend: flagembedding — FlagEmbedding's own trainer, run for real on a tiny model (a few seconds)."""
import json

import torch

from bgetune.params import params_from_dict
from bgetune.records import Passage, TrainExample, write_json, write_jsonl
from bgetune.training.flagembedding import flagembedding_command, run_flagembedding_train
from conftest import build_tiny_model

ANIMALS = ["cat", "dog", "fish", "bird", "cow", "pig"]


def test_command_maps_our_params_and_uses_torchrun_for_several_devices():
    params = params_from_dict({"train": {"lr": 3e-5, "batch_size": 8, "train_group_size": 4, "temperature": 0.05,
                                         "max_steps": 7}, "model": {"max_seq_length": 256}})
    argv = flagembedding_command(params, "base", "train.jsonl", "out", "cls", "为这个句子生成表示：", devices=1)
    options = dict(zip(argv[3::2], argv[4::2]))
    assert argv[1:3] == ["-m", "FlagEmbedding.finetune.embedder.encoder_only.base"]
    assert options["--learning_rate"] == "3e-05" and options["--temperature"] == "0.05"
    assert options["--train_group_size"] == "4" and options["--max_steps"] == "7"
    assert options["--query_max_len"] == "256" and options["--sentence_pooling_method"] == "cls"
    assert options["--query_instruction_for_retrieval"] == "为这个句子生成表示："
    assert "--overwrite_output_dir" not in argv            # rejected by its trainer under transformers 5
    multi = flagembedding_command(params, "base", "train.jsonl", "out", "cls", devices=4)
    assert multi[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"]
    assert multi[multi.index("--negatives_cross_device") + 1] == "True"


def test_flagembedding_backend_trains_and_writes_the_same_kind_of_folder(tmp_path):
    from sentence_transformers import SentenceTransformer

    from bgetune.models import pooling_mode

    model = build_tiny_model(tmp_path / "tiny", pooling="cls")
    write_jsonl(tmp_path / "data" / "corpus.jsonl",
                [Passage(id=a, doc_id=a, text=f"{a} {a}", split="train") for a in ANIMALS])
    write_jsonl(tmp_path / "data" / "train.jsonl",
                [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[f"{o} {o}" for o in ANIMALS if o != a],
                              neg_strategies=["dense"] * 5) for a in ANIMALS])
    write_json(tmp_path / "models" / "base.json", {"reference": str(model), "path": str(model),
                                                   "query_instruction": "q: ", "max_seq_length": 32,
                                                   "pooling": "auto"})
    params = params_from_dict({"model": {"base": str(model), "max_seq_length": 32},
                               "vocab": {"expand_chars": False},
                               "train": {"backend": "flagembedding", "max_steps": 3, "batch_size": 2,
                                         "train_group_size": 2, "lr": 1e-3}})
    summary = run_flagembedding_train(params, tmp_path / "data", tmp_path / "models", tmp_path / "metrics")
    assert summary["backend"] == "flagembedding" and summary["pooling"] == "cls"
    folder = tmp_path / "models" / "finetuned"
    assert (folder / "modules.json").exists() and (folder / "model.safetensors").exists()
    trained = SentenceTransformer(str(folder), device="cpu")
    assert pooling_mode(trained) == "cls" and trained.prompts["query"] == "q: "
    base = SentenceTransformer(str(model), device="cpu")
    key = next(k for k in base.state_dict() if "encoder.layer.0.attention.self.query.weight" in k)
    assert not torch.equal(base.state_dict()[key], trained.state_dict()[key])   # its trainer really trained
    assert json.loads((tmp_path / "metrics" / "train.json").read_text())["backend"] == "flagembedding"
    assert not (tmp_path / "models" / ".flagembedding").exists()
