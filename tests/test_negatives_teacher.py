"""Teacher scores for distillation: a bi-encoder folder, a cross-encoder, or the hybrid of cosine and BM25."""
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
