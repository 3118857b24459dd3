"""bgetune.training.reranker: one group per question with enough mined negatives (the rest counted), a start that
is the bi-encoder's transformer alone, and CrossEncoderTrainer runs that learn, repeat with the seed and resume a
killed run to the same weights."""
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from bgetune.params import RerankParams
from bgetune.records import TrainExample
from bgetune.reranking import RerankError, load_reranker
from bgetune.training.reranker import init_folder, train_reranker, training_groups
from conftest import build_tiny_model

WORDS = ["cat", "dog", "fish", "bird", "apple", "banana"]


def examples(negatives=2):
    return [TrainExample(query=f"which {w}", pos=[f"the {w} is here"],
                         neg=[f"the {o} is here" for o in WORDS if o != w][:negatives]) for w in WORDS]


def test_groups_hold_the_first_negatives_in_a_seeded_order_and_short_questions_are_counted():
    rows = examples(3) + [TrainExample(query="which red", pos=["the red"], neg=["the blue"])]
    groups, left_out = training_groups(rows, 2, seed=42)
    assert left_out == 1 and len(groups) == 6
    assert all(set(g) == {"query", "positive", "negative_1", "negative_2"} for g in groups)
    cat = next(g for g in groups if g["query"] == "which cat")
    assert (cat["positive"], cat["negative_1"], cat["negative_2"]) == ("the cat is here", "the dog is here",
                                                                       "the fish is here")
    assert groups == training_groups(rows, 2, seed=42)[0]
    assert [g["query"] for g in groups] != [g["query"] for g in training_groups(rows, 2, seed=7)[0]]
    assert training_groups(rows, 0, seed=42)[1] == 0            # no hard negatives asked: nobody is left out


def test_the_start_holds_the_transformer_only(tmp_path):
    model_dir = tmp_path / "finetuned"
    (model_dir / "1_Pooling").mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json"):
        (model_dir / name).write_text(name)
    init = init_folder(model_dir, tmp_path / "init")
    assert sorted(p.name for p in init.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json",
                                                      "tokenizer_config.json"]
    assert (init / "config.json").read_text() == "config.json"
    assert init_folder(model_dir, tmp_path / "init") == init     # a rerun keeps what is there
    with pytest.raises(RerankError, match="no config.json"):
        init_folder(tmp_path / "empty", tmp_path / "init2")


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    folder = build_tiny_model(tmp_path_factory.mktemp("bi") / "tiny")
    return init_folder(folder, tmp_path_factory.mktemp("init") / "init")


SETTINGS = RerankParams(enabled=True, hard_negatives=2, random_negatives=1, batch_size=2, epochs=4, lr=1e-3,
                        max_length=32, checkpoint_every=2)


def weights(folder):
    return load_file(str(next(folder.glob("*.safetensors"))))


def test_training_learns_and_repeats_with_the_seed(start, tmp_path):
    groups, _ = training_groups(examples(), 2, seed=42)
    summary = train_reranker(start, tmp_path / "a", groups, SETTINGS, seed=42, progress=False)
    assert summary["steps"] == 12                     # 6 groups / batch 2 × 4 epochs (losses logged every 5)
    assert summary["final_loss"] < summary["first_loss"]
    train_reranker(start, tmp_path / "b", groups, SETTINGS, seed=42, progress=False)
    a, b = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model = load_reranker(tmp_path / "a", max_length=32)
    right, wrong = model.predict([("which cat", "the cat is here"), ("which cat", "the dog is here")])
    assert right > wrong                              # it learnt the pairs it was shown
    with pytest.raises(RerankError, match="no reranker training groups"):
        train_reranker(start, tmp_path / "c", [], SETTINGS, seed=42, progress=False)


class KillAfter(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(start, tmp_path):
    groups, _ = training_groups(examples(), 2, seed=42)
    whole = train_reranker(start, tmp_path / "whole", groups, SETTINGS, seed=42, progress=False)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(KeyboardInterrupt):            # killed at step 3: checkpoint-2 is the last whole one
        train_reranker(start, tmp_path / "resumed", groups, SETTINGS, seed=42, checkpoint_dir=checkpoints,
                       fingerprint="f", progress=False, callbacks=[KillAfter(3)])
    assert (checkpoints / "checkpoint-2").is_dir() and not (tmp_path / "resumed").exists()
    resumed = train_reranker(start, tmp_path / "resumed", groups, SETTINGS, seed=42, checkpoint_dir=checkpoints,
                             fingerprint="f", progress=False)
    assert resumed["steps"] == whole["steps"] == 12
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert all(torch.equal(a[k], b[k]) for k in a)
