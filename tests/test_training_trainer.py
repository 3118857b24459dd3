"""Training on sentence-transformers' Trainer through ``fit``: learning, resume, keep-best, errors, the knobs."""
import json

import pytest
import torch

from bgetune.params import LoraParams, TrainParams
from bgetune.records import TrainExample
from bgetune.training.checkpoints import prepare_checkpoints
from bgetune.training.trainer import TrainingError, fit

ANIMALS = ["cat", "dog", "fish", "bird"]


def learnable_examples():
    """Query 'X' must find the passage 'X X'; the other animals' passages are its hard negatives."""
    return [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[f"{o} {o}" for o in ANIMALS if o != a],
                         neg_ids=[o for o in ANIMALS if o != a]) for a in ANIMALS]


def params(**overrides) -> TrainParams:
    base = dict(epochs=10, batch_size=4, lr=5e-3, warmup_ratio=0.0, temperature=0.05, train_group_size=4,
                checkpoint_every=0, log_every=1)
    return TrainParams(**{**base, **overrides})


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("loss", ["infonce", "cached_infonce", "cosine", "online_contrastive"])
def test_each_loss_learns_a_learnable_task(tiny_model, loss, caplog):
    infonce_terms = {} if loss.endswith("infonce") else {"hardness_mode": "off"}   # pair losses have no batch
    with caplog.at_level("INFO", logger="bgetune"):
        summary = fit(tiny_model, learnable_examples(), params(loss=loss, mini_batch_size=2, **infonce_terms), seed=0,
                      progress=False)
    assert summary["steps"] == 10 and summary["loss"] == loss
    said = "each column embedded in length-sorted chunks of 16 texts on cpu (train.length_chunk_size: auto)"
    assert (said in caplog.text) is (loss != "cached_infonce")     # GradCache has mini-batches of its own
    assert summary["final_loss"] < 0.7 * summary["first_loss"], summary["loss_curve"]


def test_the_curve_is_the_mean_loss_of_each_logging_window(tiny_model, monkeypatch):
    from bgetune.training.losses import GroupLoss

    seen = []
    original = GroupLoss.loss_from_embeddings

    def recording(self, embeddings, label):
        value = original(self, embeddings, label)
        seen.append(value.item())
        return value

    monkeypatch.setattr(GroupLoss, "loss_from_embeddings", recording)
    summary = fit(tiny_model, learnable_examples(), params(epochs=6, log_every=3), seed=0, progress=False)
    assert [p["step"] for p in summary["loss_curve"]] == [3, 6]
    assert summary["loss_curve"][0]["loss"] == pytest.approx(sum(seen[:3]) / 3, rel=1e-3)
    assert summary["first_loss"] == summary["loss_curve"][0]["loss"]
    assert summary["final_loss"] == pytest.approx(sum(seen[3:]) / 3, rel=1e-3)
    # Steps after the last multiple of log_every are logged at the last step: their mean is the final loss.
    seen.clear()
    summary = fit(tiny_model, learnable_examples(), params(epochs=5, log_every=3), seed=0, progress=False)
    assert summary["steps"] == 5 and [p["step"] for p in summary["loss_curve"]] == [3, 5]
    assert summary["final_loss"] == pytest.approx(sum(seen[3:]) / 2, rel=1e-3, abs=1e-5)   # rounded to 5 places
    seen.clear()    # a trial shorter than one window has a loss too
    summary = fit(tiny_model, learnable_examples(), params(epochs=2, log_every=3), seed=0, progress=False)
    assert [p["step"] for p in summary["loss_curve"]] == [2]
    assert summary["first_loss"] == summary["final_loss"] == pytest.approx(sum(seen) / 2, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("optimizer", ["adamw", "schedule_free_adamw"])
def test_interrupted_training_resumes_to_identical_weights(tiny_model_dir, tmp_path, optimizer):
    from transformers import TrainerCallback

    from bgetune.models import load_model

    run = params(epochs=3, batch_size=2, lr=1e-3, warmup_ratio=0.2, train_group_size=3, checkpoint_every=2,
                 optimizer=optimizer)
    straight = load_model(str(tiny_model_dir))
    fit(straight, learnable_examples(), run, seed=5, progress=False)

    class Killed(Exception):
        pass

    class KillAt5(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise Killed()

    with pytest.raises(Killed):
        fit(load_model(str(tiny_model_dir)), learnable_examples(), run, seed=5, checkpoint_dir=tmp_path / "c",
            fingerprint="f", progress=False, callbacks=[KillAt5()])
    resumed = load_model(str(tiny_model_dir))   # a fresh process would start from the checkpoint too
    summary = fit(resumed, learnable_examples(), run, seed=5, checkpoint_dir=tmp_path / "c", fingerprint="f",
                  progress=False)
    assert summary["resumed_from"].endswith("checkpoint-4") and summary["steps"] == 6
    assert [p["step"] for p in summary["loss_curve"]] == list(range(1, 7))   # the curve keeps the steps before
    for (name, a), b in zip(weights(straight).items(), weights(resumed).values()):
        assert torch.equal(a, b), name


def test_checkpoints_from_other_params_or_half_written_ones_are_not_resumed(tmp_path):
    folder = tmp_path / "c"
    (folder / "checkpoint-2").mkdir(parents=True)
    (folder / "fingerprint.json").write_text(json.dumps({"fingerprint": "old"}))
    assert prepare_checkpoints(folder, "new") is None and not (folder / "checkpoint-2").exists()
    complete, partial = folder / "checkpoint-4", folder / "checkpoint-6"
    for path in (complete, partial):
        path.mkdir()
        for name in ("model.safetensors", "optimizer.pt", "scheduler.pt"):
            (path / name).write_bytes(b"x")
    (complete / "trainer_state.json").write_text("{}")
    (partial / "trainer_state.json").write_text("")   # killed while writing its last file
    assert prepare_checkpoints(folder, "new").endswith("checkpoint-4") and not partial.exists()


class Scripted:
    """A val evaluator that returns the next scripted NDCG@10 and remembers the weights it saw."""

    def __init__(self, scores):
        from sentence_transformers.base.evaluation import BaseEvaluator

        class Evaluator(BaseEvaluator):
            def __call__(inner, model, output_path=None, epoch=-1, steps=-1):
                self.seen.append((steps, next(iter(model.state_dict().values())).sum().item()))
                return {"val_cosine_ndcg@10": self.scores.pop(0)}

        self.scores, self.seen = list(scores), []
        self.evaluator = Evaluator()
        self.evaluator.primary_metric = "val_cosine_ndcg@10"


@pytest.mark.parametrize("optimizer", ["adamw", "schedule_free_adamw"])
def test_validation_keeps_the_best_weights_and_stops_early(tiny_model, tmp_path, optimizer):
    scripted = Scripted([0.30, 0.50, 0.40, 0.45, 0.20, 0.9])
    summary = fit(tiny_model, learnable_examples(), params(epochs=20, lr=1e-3, train_group_size=2, eval_every=2,
                                                           early_stopping_patience=2, optimizer=optimizer),
                  seed=0, progress=False, evaluator=scripted.evaluator, checkpoint_dir=tmp_path / "c", fingerprint="f")
    validation = summary["validation"]
    assert [h["step"] for h in validation["history"]] == [2, 4, 6, 8] and summary["steps"] == 8
    assert validation["best_step"] == 4 and validation["best"] == 0.5 and validation["stopped_early"]
    assert validation["restored_best"]
    # The model ends with the weights evaluated at step 4, not step 8's.
    assert next(iter(tiny_model.state_dict().values())).sum().item() == pytest.approx(scripted.seen[1][1], rel=1e-6)


def test_schedule_free_learns_at_a_constant_rate_and_ends_on_its_average(tiny_model):
    from transformers import TrainerCallback

    class KeepOptimizer(TrainerCallback):
        def on_train_end(self, args, state, control, optimizer=None, **kwargs):
            self.optimizer = optimizer

    kept = KeepOptimizer()
    summary = fit(tiny_model, learnable_examples(), params(optimizer="schedule_free_adamw", warmup_ratio=0.2),
                  seed=0, progress=False, callbacks=[kept])
    assert summary["optimizer"] == "schedule_free_adamw"
    assert summary["final_loss"] < 0.7 * summary["first_loss"], summary["loss_curve"]
    # no decay: after the 2 warm-up steps the Trainer's learning rate stays at train.lr
    rates = [p["learning_rate"] for p in summary["lr_curve"]]
    assert rates[0] < 5e-3 and rates[2:] == pytest.approx([5e-3] * (len(rates) - 2))
    # the model holds the optimizer's average, not the point where the last gradient was taken
    averaged = weights(tiny_model)
    kept.optimizer.train()
    training_point = weights(tiny_model)
    assert any(not torch.equal(averaged[k], training_point[k]) for k in averaged)
    kept.optimizer.eval()
    for name, value in weights(tiny_model).items():
        assert torch.allclose(value, averaged[name], atol=1e-6), name


def test_out_of_memory_names_the_knobs(tiny_model, monkeypatch):
    from bgetune.training.losses import GroupLoss

    def out_of_memory(self, features, label):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(GroupLoss, "forward", out_of_memory)
    with pytest.raises(TrainingError, match=r"batch_size.*gradient_checkpointing.*cached_infonce"):
        fit(tiny_model, learnable_examples(), params(), seed=0, progress=False)


def test_auto_batch_size_halves_the_batch_until_it_fits(tiny_model, monkeypatch):
    from bgetune.training.losses import GroupLoss

    original = GroupLoss.forward

    def small_memory(self, features, label):
        if len(label["positive_column"]) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, features, label)

    monkeypatch.setattr(GroupLoss, "forward", small_memory)
    summary = fit(tiny_model, learnable_examples(), params(epochs=2, auto_batch_size=True), seed=0, progress=False)
    assert summary["batch_size_per_device"] == 2 and summary["steps"] == 4


def test_embedding_lr_moves_new_rows_far_more_than_the_layer_lr(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.vocab import expand_vocabulary

    def moved(embedding_lr):
        model = load_model(str(tiny_model_dir))
        expand_vocabulary(model, ["猫", "狗"], init_noise=1.0, seed=0)
        before = weights(model)
        examples = [TrainExample(query="猫", pos=["猫 猫"], pos_ids=["c"], neg=["狗 狗"], neg_ids=["d"]),
                    TrainExample(query="狗", pos=["狗 狗"], pos_ids=["d"], neg=["猫 猫"], neg_ids=["c"])]
        fit(model, examples, params(epochs=3, batch_size=2, lr=1e-4, embedding_lr=embedding_lr, train_group_size=2),
            seed=0, progress=False)
        key = next(k for k in before if k.endswith("word_embeddings.weight"))
        return (model.state_dict()[key][-2:] - before[key][-2:]).abs().max().item()

    same, fast = moved(0.0), moved(1e-2)
    assert same < 5e-4 and fast > 20 * same   # Adam moves a parameter by about lr per step


def test_frozen_embeddings_do_not_move(tiny_model):
    from bgetune.models import freeze_embeddings

    freeze_embeddings(tiny_model)
    key = next(k for k in tiny_model.state_dict() if k.endswith("word_embeddings.weight"))
    before = tiny_model.state_dict()[key].clone()
    fit(tiny_model, learnable_examples(), params(epochs=3, train_group_size=2), seed=0, progress=False)
    assert torch.equal(tiny_model.state_dict()[key], before)


def test_lora_trains_adapters_and_new_rows_and_resumes_from_its_checkpoint(tiny_model_dir, tmp_path):
    from transformers import TrainerCallback

    from bgetune.models import load_model
    from bgetune.training.lora import add_lora, merge_lora
    from bgetune.vocab import expand_vocabulary

    def lora_model():
        model = load_model(str(tiny_model_dir))
        old = len(model.tokenizer)
        expand_vocabulary(model, ["猫", "狗"], init_noise=0.1, seed=0)
        report = add_lora(model, LoraParams(r=4, alpha=8, dropout=0.0, target_modules=["query", "value"]), old)
        return model, old, report

    examples = learnable_examples() + [TrainExample(query="猫", pos=["猫 猫"], pos_ids=["c"], neg=["狗 狗"],
                                                    neg_ids=["d"])]
    run = params(epochs=4, train_group_size=2, method="lora", checkpoint_every=2)
    straight, old, report = lora_model()
    assert report["new_token_rows"] == 2 and report["trainable_parameters"] < report["total_parameters"] / 5
    summary = fit(straight, examples, run, seed=0, progress=False)
    assert summary["final_loss"] < summary["first_loss"]

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(lora_model()[0], examples, run, seed=0, progress=False, checkpoint_dir=tmp_path / "c", fingerprint="f",
            callbacks=[Stop()])
    resumed = lora_model()[0]
    fit(resumed, examples, run, seed=0, progress=False, checkpoint_dir=tmp_path / "c", fingerprint="f")
    for (name, a), b in zip(weights(straight).items(), weights(resumed).values()):
        assert torch.equal(a, b), name
    base = weights(load_model(str(tiny_model_dir)))
    merge_lora(straight, tmp_path / "adapter")
    after = weights(straight)
    embeddings = next(k for k in after if k.endswith("word_embeddings.weight"))
    assert torch.equal(after[embeddings][:old], base[embeddings])          # old rows untouched
    query = next(k for k in after if "attention.self.query.weight" in k)
    assert not torch.equal(after[query], base[query]) and not any("lora" in k for k in after)


def test_gradient_accumulation_averages_micro_batches_each_with_its_own_in_batch_negatives(tiny_model_dir):
    """Accumulating 2 micro-batches of 2 equals averaging their gradients — not one batch of 4: each query sees
    the candidates of its own micro-batch only (fewer in-batch negatives)."""
    from bgetune.models import load_model
    from bgetune.training.data import GroupCollator
    from bgetune.training.losses import build_loss

    def grads(rows_per_step):
        model = load_model(str(tiny_model_dir))
        model.eval()
        collator = GroupCollator(preprocess_fn=model.preprocess, examples=learnable_examples(), group_size=2, seed=0)
        loss_fn = build_loss(model, params())
        for rows in rows_per_step:
            batch = collator([{"example": i, "epoch": 0} for i in rows])
            features = [{k[len(p) + 1:]: v for k, v in batch.items() if k.startswith(p + "_")}
                        for p in ("query", "passage")]
            (loss_fn(features, batch["label"]) / len(rows_per_step)).backward()
        return model[0].auto_model.encoder.layer[0].attention.self.query.weight.grad

    accumulated = grads([[0, 1], [2, 3]])
    whole = grads([[0, 1, 2, 3]])
    assert not torch.allclose(accumulated, whole, atol=1e-6)
    first, second = grads([[0, 1]]), grads([[2, 3]])
    assert torch.allclose(accumulated, (first + second) / 2, atol=1e-6)
    # And the Trainer does exactly that: half the optimizer steps.
    summary = fit(load_model(str(tiny_model_dir)), learnable_examples(), params(epochs=2, batch_size=2,
                                                                                 gradient_accumulation_steps=2),
                  seed=0, progress=False)
    assert summary["steps"] == 2 and summary["global_batch_size"] == 4


def test_gradient_checkpointing_gives_the_same_first_loss(tiny_model_dir):
    from bgetune.models import load_model

    first = [fit(load_model(str(tiny_model_dir)), learnable_examples(),
                 params(epochs=1, gradient_checkpointing=checkpointing), seed=0, progress=False)["first_loss"]
             for checkpointing in (False, True)]
    assert first[0] == pytest.approx(first[1], rel=1e-4)


def test_no_examples_is_an_error(tiny_model):
    with pytest.raises(TrainingError, match="no training examples"):
        fit(tiny_model, [], params(), seed=0, progress=False)


def test_select_by_noise_similarity_keeps_the_least_similar_weights(tiny_model, tmp_path):
    from sentence_transformers.base.evaluation import BaseEvaluator

    scores = [0.50, 0.30, 0.40]
    seen = []

    class Noise(BaseEvaluator):
        def __init__(self):
            super().__init__()
            self.greater_is_better = False
            self.primary_metric = "val_noise_similarity_mean"

        def __call__(self, model, output_path=None, epoch=-1, steps=-1):
            seen.append(next(iter(model.state_dict().values())).sum().item())
            return {"val_noise_similarity_mean": scores.pop(0)}

    summary = fit(tiny_model, learnable_examples(), params(epochs=6, lr=1e-3, train_group_size=2, eval_every=2,
                                                           select_by="noise_similarity"),
                  seed=0, progress=False, evaluator=Noise(), checkpoint_dir=tmp_path / "c", fingerprint="f")
    assert summary["validation"]["best_step"] == 4 and summary["validation"]["metric"] == "noise_similarity_mean"
    assert next(iter(tiny_model.state_dict().values())).sum().item() == pytest.approx(seen[1], rel=1e-6)


def test_attention_dropout_is_set_for_training_and_not_saved(tiny_model, tmp_path):
    from bgetune.training.trainer import set_attention_dropout

    config_value = tiny_model[0].auto_model.config.attention_probs_dropout_prob
    fit(tiny_model, learnable_examples(), params(epochs=1, attention_dropout=0.0), seed=0, progress=False)
    layers = [m for n, m in tiny_model[0].auto_model.named_modules() if n.endswith("attention.self.dropout")]
    assert layers and all(m.p == 0.0 for m in layers)
    assert set_attention_dropout(tiny_model, 0.2) == len(layers) and all(m.p == 0.2 for m in layers)
    tiny_model.save(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved["attention_probs_dropout_prob"] == config_value   # inference never uses it; the config stays


def test_attention_dropout_on_a_model_without_bert_attention_is_a_one_line_error(tiny_model):
    from bgetune.training.trainer import set_attention_dropout

    for name, module in list(tiny_model[0].auto_model.named_modules()):
        if name.endswith("attention.self.dropout"):
            parent = tiny_model[0].auto_model.get_submodule(name.rsplit(".", 1)[0])
            parent.dropout = torch.nn.Identity()
    with pytest.raises(TrainingError, match="train.attention_dropout"):
        set_attention_dropout(tiny_model, 0.0)


def test_a_lora_target_naming_no_layer_is_refused_with_the_model_s_layer_names(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.params import ParamsError
    from bgetune.training.lora import add_lora

    model = load_model(str(tiny_model_dir))
    # One misspelt name among valid ones: peft alone would adapt query and leave the value layers untrained.
    with pytest.raises(ParamsError, match=r"train.lora.target_modules: 'vaule' name no layer of BertModel; its linear "
                                          r"layers are named .*\bvalue\b"):
        add_lora(model, LoraParams(target_modules=["query", "vaule"]))
    assert not any("lora" in name for name, _ in model.named_parameters())    # nothing was wrapped
    # A dotted suffix (peft's rule) is a valid target.
    assert add_lora(model, LoraParams(target_modules=["attention.self.query"]))["trainable_parameters"] > 0
