"""The losses: InfoNCE against sentence-transformers' MNRL, the false-negative mask, GradCache equivalence,
precision, and the noise and distillation terms."""
import pytest
import torch
import torch.nn.functional as F

from bgetune.params import TrainParams
from bgetune.records import TrainExample
from bgetune.training.data import GroupCollator, id_hash
from bgetune.training.losses import GroupLoss, build_loss
from bgetune.training.losses.distill import distillation
from bgetune.training.losses.infonce import false_negative_mask, infonce

ANIMALS = ["cat", "dog", "fish", "bird"]


def label_for(queries: int, candidate_ids: list[str], positives: list[list[str]]) -> dict:
    width = max(len(p) for p in positives)
    return {"positive_column": torch.arange(queries),
            "candidate_ids": torch.tensor([id_hash(i) for i in candidate_ids]),
            "query_positive_ids": torch.tensor([[id_hash(i) for i in p] + [-1] * (width - len(p)) for p in positives])}


def test_infonce_equals_hand_computation_and_sentence_transformers_mnrl():
    from sentence_transformers.util import cos_sim

    torch.manual_seed(0)
    q, c = torch.randn(3, 8), torch.randn(6, 8)
    label = label_for(3, ["a", "b", "c", "d", "e", "f"], [["a"], ["b"], ["c"]])
    loss = infonce(q, c, label, temperature=0.05)
    scores = F.normalize(q, dim=-1) @ F.normalize(c, dim=-1).T / 0.05
    expected = -torch.log_softmax(scores, dim=1)[torch.arange(3), torch.arange(3)].mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    mnrl = F.cross_entropy(cos_sim(q, c) * 20.0, torch.arange(3))
    assert loss.item() == pytest.approx(mnrl.item(), rel=1e-5)


def test_a_candidate_that_is_another_positive_of_the_query_is_masked():
    label = label_for(2, ["a", "b", "x", "b"], [["a", "x"], ["b"]])
    mask = false_negative_mask(label["query_positive_ids"], label["candidate_ids"], label["positive_column"])
    assert mask.tolist() == [[False, False, True, False], [False, False, False, True]]
    # "x" is a positive of both queries but neither's label: the loss is as if it were not a candidate.
    torch.manual_seed(1)
    q, c = torch.randn(2, 8), torch.randn(3, 8)
    both = label_for(2, ["a", "b", "x"], [["a", "x"], ["b", "x"]])
    without = label_for(2, ["a", "b"], [["a", "x"], ["b", "x"]])
    assert infonce(q, c, both, 0.05).item() == pytest.approx(infonce(q, c[:2], without, 0.05).item(), rel=1e-5)
    assert infonce(q, c, label_for(2, ["a", "b", "x"], [["a"], ["b"]]), 0.05).item() > \
        infonce(q, c[:2], without, 0.05).item()


def batch_for(model, group_size=3, noise=()):
    examples = [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[f"{a} one", f"{a} two"],
                             neg_ids=[f"{a}1", f"{a}2"], pos_scores=[0.9], neg_scores=[0.5, 0.1]) for a in ANIMALS]
    collator = GroupCollator(preprocess_fn=model.preprocess, examples=examples, group_size=group_size, seed=0,
                             noise_texts=list(noise))
    batch = collator([{"example": i, "epoch": 0} for i in range(len(examples))])
    features = [{k[len(p) + 1:]: v for k, v in batch.items() if k.startswith(p + "_")}
                for p in ("query", "passage", "noise") if any(k.startswith(p + "_") for k in batch)]
    return features, batch["label"]


def test_cached_loss_gives_the_loss_and_gradients_of_the_plain_one(tiny_model_dir):
    from bgetune.models import load_model

    results = {}
    for kind in ("infonce", "cached_infonce"):
        model = load_model(str(tiny_model_dir))
        model.eval()   # no dropout: both passes see the same network
        features, label = batch_for(model)
        loss = build_loss(model, TrainParams(loss=kind, temperature=0.05, mini_batch_size=3))(features, label)
        loss.backward()
        grad = model[0].auto_model.encoder.layer[0].attention.self.query.weight.grad.clone()
        results[kind] = (loss.item(), grad)
    assert results["cached_infonce"][0] == pytest.approx(results["infonce"][0], rel=1e-5)
    assert torch.allclose(results["cached_infonce"][1], results["infonce"][1], atol=1e-6)


def test_bf16_autocast_on_cpu_gives_a_finite_loss_close_to_fp32(tiny_model):
    tiny_model.eval()
    features, label = batch_for(tiny_model)
    loss_fn = build_loss(tiny_model, TrainParams(temperature=0.05))
    full = loss_fn(features, label).item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = loss_fn(features, label)
    assert torch.isfinite(half) and half.dtype == torch.float32   # scores are computed in fp32
    assert half.item() == pytest.approx(full, rel=0.05)


def test_pairwise_losses_use_each_group(tiny_model):
    features, label = batch_for(tiny_model)
    for kind in ("cosine", "online_contrastive"):
        loss = build_loss(tiny_model, TrainParams(loss=kind))(features, label)
        assert torch.isfinite(loss) and loss.item() >= 0


def test_noise_term_adds_the_weighted_penalty(tiny_model):
    tiny_model.eval()
    features, label = batch_for(tiny_model, noise=["hello there", "tell me a joke", "nice weather"])
    plain = GroupLoss(tiny_model, "infonce", temperature=0.05)(features[:2], label)
    with_noise = GroupLoss(tiny_model, "infonce", temperature=0.05, noise_weight=2.0, noise_margin=-1.0)(features,
                                                                                                        label)
    q = tiny_model(features[0])["sentence_embedding"]
    n = tiny_model(features[2])["sentence_embedding"]
    penalty = F.relu(F.normalize(q, dim=-1) @ F.normalize(n, dim=-1).T + 1.0).mean()
    assert with_noise.item() == pytest.approx(plain.item() + 2.0 * penalty.item(), rel=1e-4)


def test_distillation_is_zero_when_the_student_agrees_and_pulls_towards_the_teacher():
    q = torch.tensor([[1.0, 0.0]], requires_grad=True)
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    label = {"group_columns": torch.tensor([[0, 1]]), "teacher_scores": torch.tensor([[1.0, 0.0]])}
    # The teacher's scores at its temperature equal the student's cosines at the student's: KL 0.
    assert distillation(q, c, label, temperature=0.5, teacher_temperature=0.5).item() == pytest.approx(0.0, abs=1e-6)
    flipped = {"group_columns": torch.tensor([[0, 1]]), "teacher_scores": torch.tensor([[0.0, 1.0]])}
    kl = distillation(q, c, flipped, temperature=0.5, teacher_temperature=0.5)
    kl.backward()
    assert kl.item() > 0.5 and q.grad[0, 1] < 0   # gradient descent moves q towards the teacher's favourite
    missing = {"group_columns": torch.tensor([[0, 1]]), "teacher_scores": torch.tensor([[float("nan")] * 2])}
    assert distillation(q, c, missing, 0.5).item() == 0.0


def test_non_finite_loss_names_the_causes(tiny_model):
    from bgetune.training.losses import NonFiniteLoss

    features, label = batch_for(tiny_model)
    with pytest.raises(NonFiniteLoss, match="temperature"):
        GroupLoss(tiny_model, "infonce", temperature=0.0)(features, label)


def test_loss_scores_are_fp32_under_bf16_autocast():
    # At temperature 0.02 bf16's rounding of a cosine (steps of 0.004 near 0.8) moves a logit by 0.2; the loss
    # computes its small score matrix in fp32 whatever the autocast, so the same embeddings give the same loss.
    torch.manual_seed(0)
    q, c = torch.randn(4, 32), torch.randn(8, 32)
    label = label_for(4, [f"p{i}" for i in range(8)], [[f"p{i}"] for i in range(4)])
    label["group_columns"] = torch.tensor([[0, 4], [1, 5], [2, 6], [3, 7]])
    label["teacher_scores"] = torch.randn(4, 2)
    loss_fn = GroupLoss(None, "infonce", temperature=0.02, distill_weight=1.0)
    full = loss_fn.loss_from_embeddings([q, c], label)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half = loss_fn.loss_from_embeddings([q, c], label)
        naive = infonce(q, c, label, temperature=0.02)   # the bare function under autocast: bf16 scores
    assert half.item() == pytest.approx(full.item(), abs=1e-6)
    assert abs(naive.item() - infonce(q, c, label, temperature=0.02).item()) > 1e-4   # what fp32 avoids
