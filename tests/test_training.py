import random

import pytest
import torch

from bgetune.params import TrainParams
from bgetune.records import TrainExample
from bgetune.training.batching import no_duplicate_batches, sample_group
from bgetune.training.losses import InfoNCELoss, false_negative_mask
from bgetune.training.loop import TrainingError, train

COLOURS = ["red", "blue", "green"]
ANIMALS = ["cat", "dog", "fish", "bird"]


def learnable_examples():
    """Query 'X' must find the passage 'X X'; the other animals' passages are its hard negatives."""
    examples = []
    for animal in ANIMALS:
        others = [a for a in ANIMALS if a != animal]
        examples.append(TrainExample(query=animal, pos=[f"{animal} {animal}"], pos_ids=[animal],
                                     neg=[f"{o} {o}" for o in others], neg_ids=others))
    return examples


def test_batches_never_repeat_a_query_or_positive_and_cover_all_examples():
    examples = [TrainExample(query=f"q{i % 5}", pos=["p"], pos_ids=[f"p{i % 3}"], neg=[]) for i in range(12)]
    batches = no_duplicate_batches(examples, batch_size=4, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(12))
    for batch in batches:
        assert len({examples[i].query for i in batch}) == len(batch)
        assert len({examples[i].pos_ids[0] for i in batch}) == len(batch)
    assert no_duplicate_batches(examples, 4, seed=0, epoch=0) == batches
    assert no_duplicate_batches(examples, 4, seed=0, epoch=1) != batches


def test_sample_group_sizes():
    example = TrainExample(query="q", pos=["p"], pos_ids=["p"], neg=["a", "b"], neg_ids=["a", "b"])
    assert len(sample_group(example, 5, random.Random(0)).negatives) == 4   # with replacement when too few
    assert sorted(sample_group(example, 3, random.Random(0)).negative_ids) == ["a", "b"]
    empty = TrainExample(query="q", pos=["p"], pos_ids=["p"], neg=[])
    assert sample_group(empty, 4, random.Random(0)).negatives == []


def test_infonce_matches_hand_computation_and_sentence_transformers_mnrl():
    torch.manual_seed(0)
    q, c = torch.randn(3, 8), torch.randn(6, 8)
    labels = torch.tensor([0, 1, 2])
    loss = InfoNCELoss(temperature=0.05)(q, c, labels)
    scores = torch.nn.functional.normalize(q, dim=-1) @ torch.nn.functional.normalize(c, dim=-1).T / 0.05
    expected = -torch.log_softmax(scores, dim=1)[torch.arange(3), labels].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # MNRL with scale = 1 / temperature is the same loss when every query has the same number of negatives.
    from sentence_transformers.util import cos_sim
    mnrl_scores = cos_sim(q, c) * 20.0
    mnrl = torch.nn.functional.cross_entropy(mnrl_scores, labels)
    assert InfoNCELoss(temperature=0.05)(q, c, labels).item() == pytest.approx(mnrl.item(), rel=1e-5)


def test_false_negative_mask_hides_other_candidates_that_are_positives():
    mask = false_negative_mask([{"a", "x"}, {"b"}], ["a", "b", "x", "b"], labels=[0, 1])
    assert mask.tolist() == [[False, False, True, False], [False, False, False, True]]


def test_loss_decreases_on_a_learnable_task(tiny_model):
    params = TrainParams(epochs=15, batch_size=4, lr=5e-3, warmup_ratio=0.0, temperature=0.05,
                         train_group_size=4, checkpoint_every=0)
    losses = []
    result = train(tiny_model, learnable_examples(), params, seed=0, progress=False,
                   log_metrics=lambda step, m: losses.append(m["loss"]))
    assert result["steps"] == 15
    assert result["final_loss_mean"] < 0.5 * result["first_loss"]


def test_interrupted_training_resumes_to_identical_weights(tiny_model_dir, tmp_path):
    from bgetune.models import load_model

    params = TrainParams(epochs=3, batch_size=2, lr=1e-3, warmup_ratio=0.2, temperature=0.05, train_group_size=3,
                         checkpoint_every=2)
    examples = learnable_examples()
    straight = load_model(str(tiny_model_dir), 64)
    train(straight, examples, params, seed=5, progress=False)

    class Killed(Exception):
        pass

    def kill_at_5(step):
        if step == 5:
            raise Killed()

    checkpoint = tmp_path / "ckpt"
    interrupted = load_model(str(tiny_model_dir), 64)
    with pytest.raises(Killed):
        train(interrupted, examples, params, seed=5, checkpoint_dir=checkpoint, checkpoint_every=2,
              fingerprint="f", on_step=kill_at_5, progress=False)
    resumed = load_model(str(tiny_model_dir), 64)   # a fresh process: weights come from the checkpoint
    result = train(resumed, examples, params, seed=5, checkpoint_dir=checkpoint, checkpoint_every=2,
                   fingerprint="f", progress=False)
    assert result["resumed_from_step"] == 4 and result["steps"] == 6
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_checkpoint_from_other_params_is_not_resumed(tiny_model_dir, tmp_path):
    from bgetune.models import load_model

    params = TrainParams(epochs=2, batch_size=2, lr=1e-3, train_group_size=2, checkpoint_every=1)
    model = load_model(str(tiny_model_dir), 64)

    def stop(step):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, learnable_examples(), params, 0, checkpoint_dir=tmp_path / "c", checkpoint_every=1,
              fingerprint="old", on_step=stop, progress=False)
    result = train(load_model(str(tiny_model_dir), 64), learnable_examples(), params, 0,
                   checkpoint_dir=tmp_path / "c", checkpoint_every=1, fingerprint="new", progress=False)
    assert result["resumed_from_step"] == 0


def test_non_finite_loss_names_step_and_causes(tiny_model):
    params = TrainParams(epochs=1, batch_size=4, lr=1e-3, temperature=1e-45, train_group_size=2, checkpoint_every=0)
    with pytest.raises(TrainingError, match=r"non-finite loss .* at step 1: .*temperature"):
        train(tiny_model, learnable_examples(), params, seed=0, progress=False)


def test_empty_training_set_is_an_error(tiny_model):
    with pytest.raises(TrainingError, match="no training examples"):
        train(tiny_model, [], TrainParams(), seed=0, progress=False)


@pytest.mark.parametrize("loss", ["cached_infonce", "cosine", "online_contrastive"])
def test_each_loss_decreases_on_a_learnable_task(tiny_model_dir, loss):
    from bgetune.models import load_model

    model = load_model(str(tiny_model_dir), 64)
    params = TrainParams(epochs=15, batch_size=4, lr=5e-3, warmup_ratio=0.0, temperature=0.05, train_group_size=4,
                         checkpoint_every=0, loss=loss, mini_batch_size=2, contrastive_margin=0.5)
    result = train(model, learnable_examples(), params, seed=0, progress=False)
    assert result["loss"] == loss and result["steps"] == 15
    assert result["final_loss_mean"] < 0.7 * result["first_loss"], result


def test_cached_infonce_equals_infonce_when_every_query_has_the_same_negatives(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.training.losses import BatchLoss

    # No passage is both one query's positive and another's negative, so the id mask has nothing to hide.
    examples = [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[f"{a} one", f"{a} two"],
                             neg_ids=[f"{a}1", f"{a}2"]) for a in ANIMALS]
    groups = [sample_group(e, 3, random.Random(0)) for e in examples]
    values = {}
    for kind in ("infonce", "cached_infonce"):
        model = load_model(str(tiny_model_dir), 64)
        params = TrainParams(temperature=0.05, loss=kind, mini_batch_size=2)
        values[kind] = BatchLoss(model, kind, params)(groups).item()
    assert values["cached_infonce"] == pytest.approx(values["infonce"], rel=1e-4)


def test_cached_infonce_counts_the_negatives_it_cannot_use(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.training.losses import BatchLoss

    # One query has no negatives, so the batch has no negative columns: the others' 3 × 2 are left out per call.
    examples = [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[] if i == 0 else [f"{a} one", f"{a} two"],
                             neg_ids=[] if i == 0 else [f"{a}1", f"{a}2"]) for i, a in enumerate(ANIMALS)]
    groups = [sample_group(e, 3, random.Random(0)) for e in examples]
    assert [len(g.negatives) for g in groups] == [0, 2, 2, 2]
    loss_fn = BatchLoss(load_model(str(tiny_model_dir), 64), "cached_infonce",
                        TrainParams(temperature=0.05, loss="cached_infonce", mini_batch_size=2))
    loss_fn(groups)
    loss_fn(groups)
    assert loss_fn.negatives_left_out == 12


def test_noise_penalty_pushes_chit_chat_away(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.search import encode

    noise = ["hello there", "tell me a joke", "nice weather today"]
    queries = [e.query for e in learnable_examples()]

    def mean_noise_similarity(model):
        return float((encode(model, queries, progress=False) @ encode(model, noise, progress=False).T).mean())

    plain, penalised = load_model(str(tiny_model_dir), 64), load_model(str(tiny_model_dir), 64)
    common = dict(epochs=10, batch_size=4, lr=5e-3, warmup_ratio=0.0, temperature=0.05, train_group_size=2,
                  checkpoint_every=0, noise_margin=-1.0)
    train(plain, learnable_examples(), TrainParams(**common), seed=0, progress=False)
    train(penalised, learnable_examples(), TrainParams(**common, noise_weight=1.0), seed=0, progress=False,
          noise_texts=noise)
    assert mean_noise_similarity(penalised) < mean_noise_similarity(plain) - 0.05


def test_validation_keeps_the_best_checkpoint_and_stops_early(tiny_model):
    scores = iter([0.30, 0.50, 0.40, 0.45, 0.20, 0.9])
    seen = []

    def evaluate(model):
        seen.append(next(iter(model.state_dict().values())).sum().item())
        return {"ndcg@10": next(scores)}

    params = TrainParams(epochs=20, batch_size=4, lr=1e-3, train_group_size=2, checkpoint_every=0, eval_every=2,
                         early_stopping_patience=2, keep_best=True)
    logged = []
    result = train(tiny_model, learnable_examples(), params, seed=0, progress=False, evaluate=evaluate,
                   log_metrics=lambda step, values: logged.append((step, values)))
    validation = result["validation"]
    # Evaluations at steps 2, 4, 6, 8: best 0.50 at step 4, then two without improvement → stop after step 8.
    assert [h["step"] for h in validation["history"]] == [2, 4, 6, 8] and result["steps"] == 8
    assert validation["best_step"] == 4 and validation["best_ndcg@10"] == 0.5 and validation["stopped_early"]
    assert any("val_ndcg@10" in values for _, values in logged)
    # The model ends with the weights evaluated at step 4, not step 8's.
    assert next(iter(tiny_model.state_dict().values())).sum().item() == pytest.approx(seen[1], rel=1e-6)


def test_lora_trains_adapters_and_new_token_rows_and_saves_a_plain_model(tiny_model_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from bgetune.models import load_model
    from bgetune.params import LoraParams
    from bgetune.search import encode
    from bgetune.training.lora import add_lora, merge_lora
    from bgetune.vocab import expand_vocabulary

    model = load_model(str(tiny_model_dir), 64)
    old_vocab = len(model.tokenizer)
    expand_vocabulary(model, ["猫", "狗"], init_noise=0.1, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = add_lora(model, LoraParams(r=4, alpha=8, dropout=0.0, target_modules=["query", "value"]), old_vocab)
    assert report["new_token_rows"] == 2 and report["trainable_parameters"] < report["total_parameters"] / 5
    examples = learnable_examples() + [TrainExample(query="猫", pos=["猫 猫"], pos_ids=["c"], neg=["狗 狗"],
                                                    neg_ids=["d"])]
    params = TrainParams(epochs=10, batch_size=4, lr=5e-3, warmup_ratio=0.0, temperature=0.05, train_group_size=2,
                         checkpoint_every=0, method="lora")
    result = train(model, examples, params, seed=0, progress=False)
    assert result["final_loss_mean"] < result["first_loss"]
    merge_lora(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    after = model.state_dict()
    assert set(after) == set(before)                              # plain keys again: no peft wrapper left
    embeddings = next(k for k in after if k.endswith("word_embeddings.weight"))
    assert torch.equal(after[embeddings][:old_vocab], before[embeddings][:old_vocab])   # old rows untouched
    assert not torch.equal(after[embeddings][old_vocab:], before[embeddings][old_vocab:])  # new rows trained
    query_key = next(k for k in after if "attention.self.query.weight" in k)
    assert not torch.equal(after[query_key], before[query_key])   # the adapter is merged into the weights
    model.save(str(tmp_path / "plain"))
    reloaded = SentenceTransformer(str(tmp_path / "plain"), device="cpu")
    assert not any("lora" in k for k in reloaded.state_dict())
    assert abs(encode(reloaded, ["猫 猫"], progress=False) - encode(model, ["猫 猫"], progress=False)).max() < 1e-5


def test_frozen_embeddings_do_not_move(tiny_model):
    from bgetune.pipeline import _freeze_embeddings

    _freeze_embeddings(tiny_model)
    key = next(k for k in tiny_model.state_dict() if k.endswith("word_embeddings.weight"))
    before = tiny_model.state_dict()[key].clone()
    train(tiny_model, learnable_examples(), TrainParams(epochs=3, batch_size=4, lr=5e-3, train_group_size=2,
                                                        checkpoint_every=0), seed=0, progress=False)
    assert torch.equal(tiny_model.state_dict()[key], before)


def test_embedding_lr_puts_token_embeddings_in_their_own_group(tiny_model, tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.params import LoraParams
    from bgetune.training.lora import add_lora
    from bgetune.training.loop import parameter_groups
    from bgetune.vocab import expand_vocabulary

    embedding = tiny_model[0].auto_model.get_input_embeddings().weight
    plain = parameter_groups(tiny_model, TrainParams())
    assert len(plain) == 2 and not any(p is embedding for g in plain for p in g["params"] if "lr" in g)
    groups = parameter_groups(tiny_model, TrainParams(embedding_lr=1e-3))
    assert [g.get("lr") for g in groups] == [None, None, 1e-3]
    assert len(groups[2]["params"]) == 1 and groups[2]["params"][0] is embedding
    assert sum(len(g["params"]) for g in groups) == sum(len(g["params"]) for g in plain)

    # LoRA: the trainable part of the embeddings is the delta of the new rows, and that is what gets embedding_lr.
    model = load_model(str(tiny_model_dir), 64)
    old_vocab = len(model.tokenizer)
    expand_vocabulary(model, ["猫", "狗"], init_noise=1.0, seed=0)
    add_lora(model, LoraParams(r=4, alpha=8, target_modules=["query"]), old_vocab)
    lora_groups = parameter_groups(model, TrainParams(method="lora", embedding_lr=1e-3))
    assert lora_groups[-1]["lr"] == 1e-3
    assert [tuple(p.shape) for p in lora_groups[-1]["params"]] == [(2, embedding.shape[1])]


def test_embedding_lr_moves_new_rows_further_than_the_layer_lr(tiny_model_dir):
    from bgetune.models import load_model
    from bgetune.vocab import expand_vocabulary

    def trained(embedding_lr):
        model = load_model(str(tiny_model_dir), 64)
        expand_vocabulary(model, ["猫", "狗"], init_noise=1.0, seed=0)
        key = next(k for k in model.state_dict() if k.endswith("word_embeddings.weight"))
        query = next(k for k in model.state_dict() if "attention.self.query.weight" in k)
        before = {k: model.state_dict()[k].clone() for k in (key, query)}
        examples = [TrainExample(query="猫", pos=["猫 猫"], pos_ids=["c"], neg=["狗 狗"], neg_ids=["d"]),
                    TrainExample(query="狗", pos=["狗 狗"], pos_ids=["d"], neg=["猫 猫"], neg_ids=["c"])]
        train(model, examples, TrainParams(epochs=3, batch_size=2, lr=1e-4, embedding_lr=embedding_lr,
                                           warmup_ratio=0.0, train_group_size=2, checkpoint_every=0),
              seed=0, progress=False)
        after = model.state_dict()
        return ((after[key][-2:] - before[key][-2:]).abs().max().item(),
                (after[query] - before[query]).abs().max().item())

    same_rows, same_layers = trained(0.0)
    fast_rows, _ = trained(1e-2)
    # Adam moves a parameter by about lr per step: 3 steps at 1e-4 vs 1e-2.
    assert same_rows < 5e-4 and fast_rows > 20 * same_rows
    assert same_layers > 0
