"""Teacher scores for distillation: a bi-encoder folder, a cross-encoder, the hybrid of cosine and BM25, or BM25."""
import json

import numpy as np

from bgetune.negatives.teacher import hybrid_scores, is_cross_encoder, teacher_scores
from bgetune.params import MiningParams, ModelParams
from bgetune.records import Passage, TrainExample


def test_hybrid_maps_bm25_onto_the_cosine_range_and_averages():
    cosines, lexical = np.array([0.8, 0.6, 0.4]), np.array([0.0, 10.0, 5.0])
    mixed = hybrid_scores(cosines, lexical)
    assert np.allclose(mixed, [(0.8 + 0.4) / 2, (0.6 + 0.8) / 2, (0.4 + 0.6) / 2])
    # the positive (first) loses its lead when BM25 prefers another passage
    assert mixed.argmax() == 1


def lexical_case():
    texts = {"p": "糖尿病 饮食 控制 血糖", "n1": "感冒 发烧 咳嗽", "n2": "糖尿病 运动", "q0": "其他"}
    passages = [Passage(id=i, doc_id=i, text=t, split="train") for i, t in texts.items()]
    # the scoring model's cosines rank n1 first: an untrained model that is wrong
    example = TrainExample(query="糖尿病 饮食", pos=[texts["p"]], pos_ids=["p"], neg=[texts["n1"], texts["n2"]],
                           neg_ids=["n1", "n2"], pos_scores=[0.5], neg_scores=[0.7, 0.3])
    unscored = TrainExample(query="糖尿病", pos=[texts["p"]], pos_ids=["p"], neg=[texts["q0"]], neg_ids=["q0"])
    return passages, [example, unscored]


def test_the_bm25_teacher_ranks_by_bm25_alone_on_the_cosine_scale():
    passages, (example, unscored) = lexical_case()
    report = teacher_scores([example, unscored], passages, MiningParams(teacher="bm25"), ModelParams(), "cpu", "fp32",
                            scorer_model=None, scorer_instruction="")
    scores = example.pos_scores + example.neg_scores
    # BM25 order: p (both query words) > n2 (one) > n1 (none), whatever the cosines said
    assert scores[0] > scores[2] > scores[1]
    assert (min(scores), max(scores)) == (0.3, 0.7)   # the group's cosine range, so distill_temperature reads it
    assert report == {"teacher": "bm25", "kind": "BM25 mapped onto the cosine range", "groups": 2,
                      "groups_without_scores": 1, "bm25": {"tokens": "words", "k1": 1.5, "b": 0.75}}   # mining.bm25
    assert unscored.pos_scores is None   # counted above, not invented


def test_the_hybrid_teacher_keeps_half_of_the_cosine():
    passages, (example, unscored) = lexical_case()
    teacher_scores([example, unscored], passages, MiningParams(teacher="hybrid"), ModelParams(), "cpu", "fp32",
                   scorer_model=None, scorer_instruction="")
    # BM25 maps p to the top of the cosine range (0.7) and n1 to its bottom (0.3); each is averaged with its cosine
    assert example.pos_scores == [0.6] and example.neg_scores[0] == 0.5
    assert 0.3 < example.neg_scores[1] < 0.5


def test_cross_encoders_are_told_apart_by_their_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    assert is_cross_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert not is_cross_encoder(str(tmp_path))


def test_a_bi_encoder_teacher_rescores_every_group(tiny_model_dir):
    passages = [Passage(id=i, doc_id=i, text=t, split="train") for i, t in (("p", "red cat"), ("n", "blue dog"))]
    examples = [TrainExample(query="red cat", pos=["red cat"], pos_ids=["p"], neg=["blue dog"], neg_ids=["n"],
                             pos_scores=[0.0], neg_scores=[0.0])]
    report = teacher_scores(examples, passages, MiningParams(teacher=str(tiny_model_dir)), ModelParams(), "cpu",
                            "fp32", scorer_model=None, scorer_instruction="")
    assert report["kind"] == "bi-encoder cosines"
    assert examples[0].pos_scores[0] > examples[0].neg_scores[0]   # the identical text scores highest
    assert -1.0 <= examples[0].neg_scores[0] <= 1.0
