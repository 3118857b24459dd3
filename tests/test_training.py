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
