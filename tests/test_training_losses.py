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


def st_and_ours(batch: int = 4, negatives: int = 2, dim: int = 16, seed: int = 0):
    """Random embeddings in sentence-transformers' column layout (queries, positives, negatives_1, ...) and in ours
    (every positive, then each query's group of hard negatives), with the label our collator would give."""
    torch.manual_seed(seed)
    q = torch.randn(batch, dim)
    columns = [torch.randn(batch, dim) for _ in range(1 + negatives)]
    ours = [columns[0]] + [columns[1 + n][i:i + 1] for i in range(batch) for n in range(negatives)]
    ids = [f"p{i}" for i in range(batch)] + [f"n{i}_{n}" for i in range(batch) for n in range(negatives)]
    label = label_for(batch, ids, [[f"p{i}"] for i in range(batch)])
    label["group_columns"] = torch.tensor([[i] + [batch + i * negatives + n for n in range(negatives)]
                                           for i in range(batch)])
    return [q, *columns], q, torch.cat(ours), label


@pytest.mark.parametrize("directions, partition_mode", [
    (("query_to_doc", "doc_to_query"), "per_direction"),
    (("query_to_doc", "doc_to_query"), "joint"),
    (("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"), "joint"),
    (("query_to_doc", "doc_to_doc"), "joint"),
])
def test_infonce_directions_equal_sentence_transformers_mnrl(directions, partition_mode):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    st_embeddings, q, c, label = st_and_ours()
    mnrl = MultipleNegativesRankingLoss(None, scale=1 / 0.05, directions=directions, partition_mode=partition_mode)
    expected = mnrl.compute_loss_from_embeddings(st_embeddings, None).item()
    ours = infonce(q, c, label, 0.05, directions=directions, partition_mode=partition_mode).item()
    assert ours == pytest.approx(expected, rel=1e-5)
    assert ours != pytest.approx(infonce(q, c, label, 0.05).item(), rel=1e-3)   # the terms change the loss


@pytest.mark.parametrize("mode, alpha", [("in_batch_negatives", 9.0), ("hard_negatives", 5.0),
                                         ("all_negatives", 3.0)])
def test_infonce_hardness_weighting_equals_sentence_transformers_mnrl(mode, alpha):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    st_embeddings, q, c, label = st_and_ours(seed=3)
    mnrl = MultipleNegativesRankingLoss(None, scale=1 / 0.05, hardness_mode=mode, hardness_strength=alpha)
    expected = mnrl.compute_loss_from_embeddings(st_embeddings, None).item()
    assert infonce(q, c, label, 0.05, hardness_mode=mode, hardness_strength=alpha).item() == \
        pytest.approx(expected, rel=1e-5)
    # the penalty carries no gradient: only the cosines / temperature do
    q.requires_grad_(True)
    infonce(q, c, label, 0.05, hardness_mode=mode, hardness_strength=alpha).backward()
    weighted = q.grad.clone()
    q.grad = None
    infonce(q, c, label, 0.05).backward()
    assert not torch.allclose(weighted, q.grad)


def test_same_side_terms_never_use_a_paraphrase_or_the_own_group_as_a_negative():
    # queries 0 and 1 share the positive "a" (a duplicate question): neither is the other's negative in
    # query_to_query, neither's passage copy is the other's negative in doc_to_query; in doc_to_doc a passage
    # meets only other queries' candidates, never its own group or a copy of its own positive.
    torch.manual_seed(5)
    q, c = torch.randn(3, 8), torch.randn(5, 8)
    label = label_for(3, ["a", "a", "c", "x", "y"], [["a"], ["a"], ["c"]])
    label["group_columns"] = torch.tensor([[0, 3], [1, 4], [2, -1]])
    t = 0.1
    qn, cn = F.normalize(q, dim=-1), F.normalize(c, dim=-1)
    qc, qq, pq, pc = qn @ cn.T / t, qn @ qn.T / t, cn[:3] @ qn.T / t, cn[:3] @ cn.T / t
    allowed = {  # per query: the scores in its partition (query_to_doc masks the copy of "a" already)
        0: [qc[0, 0], qc[0, 2], qc[0, 3], qc[0, 4], qq[0, 2], pq[0, 0], pq[0, 2], pc[0, 2], pc[0, 4]],
        1: [qc[1, 1], qc[1, 2], qc[1, 3], qc[1, 4], qq[1, 2], pq[1, 1], pq[1, 2], pc[1, 2], pc[1, 3]],
        2: [qc[2, 0], qc[2, 1], qc[2, 2], qc[2, 3], qc[2, 4], qq[2, 0], qq[2, 1], pq[2, 0], pq[2, 1], pq[2, 2],
            pc[2, 0], pc[2, 1], pc[2, 3], pc[2, 4]],
    }
    expected = sum(torch.logsumexp(torch.stack(allowed[i]), 0) - qc[i, i] for i in range(3)) / 3
    loss = infonce(q, c, label, t, directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_infonce_terms_reach_the_loss_from_params_and_bad_combinations_are_refused(tiny_model):
    from pydantic import ValidationError

    tiny_model.eval()
    features, label = batch_for(tiny_model)
    plain = build_loss(tiny_model, TrainParams(temperature=0.05, hardness_mode="off"))(features, label).item()
    # the default weighs the in-batch negatives by their hardness (α 9), which changes the loss
    default_loss = build_loss(tiny_model, TrainParams(temperature=0.05))
    assert default_loss.infonce_terms["hardness_mode"] == "in_batch_negatives"
    assert default_loss.infonce_terms["hardness_strength"] == 9.0
    assert default_loss(features, label).item() != pytest.approx(plain, rel=1e-4)
    symmetric_params = TrainParams(temperature=0.05, directions=["query_to_doc", "doc_to_query"],
                                   partition_mode="per_direction", hardness_mode="off")
    loss_fn = build_loss(tiny_model, symmetric_params)
    assert loss_fn.infonce_terms == {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction",
                                     "hardness_mode": "off", "hardness_strength": 9.0}
    assert loss_fn(features, label).item() != pytest.approx(plain, rel=1e-4)
    cached = build_loss(tiny_model, symmetric_params.model_copy(update={"loss": "cached_infonce", "mini_batch_size": 3}))
    assert cached(features, label).item() == pytest.approx(loss_fn(features, label).item(), rel=1e-5)
    # a bare `off` in YAML (as `-S train.hardness_mode=off` may write it) reads as false: it means off
    assert TrainParams(hardness_mode=False).hardness_mode == "off"
    for bad, message in [({"directions": ["doc_to_query"]}, "must include query_to_doc"),
                         ({"directions": ["query_to_doc", "doc_to_doc"], "partition_mode": "per_direction"},
                          "per_direction needs"),
                         ({"hardness_mode": "hard_negatives", "hardness_strength": 0.0}, "weighs nothing"),
                         ({"directions": ["query_to_doc", "doc_to_query"], "loss": "cosine", "hardness_mode": "off"},
                          r"train.loss is cosine, which is not InfoNCE: train.directions: \['query_to_doc', "
                          r"'doc_to_query'\] shape InfoNCE only"),
                         ({"loss": "online_contrastive"},
                          "train.hardness_mode: in_batch_negatives .set it to off. shape InfoNCE only")]:
        with pytest.raises(ValidationError, match=message):
            TrainParams(**bad)
    # turning hardness off is one key: α is then unused
    assert TrainParams(loss="cosine", hardness_mode="off").hardness_strength == 9.0


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
        loss = build_loss(tiny_model, TrainParams(loss=kind, hardness_mode="off"))(features, label)
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
