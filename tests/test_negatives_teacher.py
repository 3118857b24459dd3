"""Teacher scores for distillation: a bi-encoder folder, a cross-encoder, the hybrid of cosine and BM25, or BM25."""
import json

import numpy as np

from bgetune.negatives.teacher import distill_temperature, hybrid_scores, is_cross_encoder, teacher_scores
from bgetune.params import MiningParams, ModelParams, TrainParams
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


def test_auto_reads_a_cross_encoders_logits_at_1_and_cosines_like_the_student(tmp_path, tiny_model_dir):
    from conftest import build_tiny_xlmr

    reranker = str(build_tiny_xlmr(tmp_path / "tiny-bge-reranker", reranker=True))
    auto = TrainParams(temperature=0.05)
    assert distill_temperature(auto, reranker)[0] == 1.0
    for cosine_teacher in ("", "hybrid", "bm25", str(tiny_model_dir)):   # the scoring model, BM25 mapped, a bi-encoder
        assert distill_temperature(auto, cosine_teacher)[0] == 0.05
    assert distill_temperature(TrainParams(distill_temperature=0.3), reranker) == (0.3, "train.distill_temperature")


def test_a_bi_encoder_teacher_rescores_every_group(tiny_model_dir):
    passages = [Passage(id=i, doc_id=i, text=t, split="train") for i, t in (("p", "red cat"), ("n", "blue dog"))]
    examples = [TrainExample(query="red cat", pos=["red cat"], pos_ids=["p"], neg=["blue dog"], neg_ids=["n"],
                             pos_scores=[0.0], neg_scores=[0.0])]
    report = teacher_scores(examples, passages, MiningParams(teacher=str(tiny_model_dir)), ModelParams(), "cpu",
                            "fp32", scorer_model=None, scorer_instruction="")
    assert report["kind"] == "bi-encoder cosines"
    assert examples[0].pos_scores[0] > examples[0].neg_scores[0]   # the identical text scores highest
    assert -1.0 <= examples[0].neg_scores[0] <= 1.0


def test_a_cross_encoder_teacher_scores_each_query_with_the_stored_passage_text(tmp_path):
    from sentence_transformers import CrossEncoder

    from conftest import build_tiny_xlmr

    reranker = build_tiny_xlmr(tmp_path / "tiny-bge-reranker", reranker=True)   # XLM-RoBERTa + one logit
    assert is_cross_encoder(str(reranker))
    passages = [Passage(id=i, doc_id=i, text=t, split="train")
                for i, t in (("p", "the red cat is here"), ("n1", "blue dog"), ("n2", "big fish and small bird"))]
    examples = [TrainExample(query="where is the red cat", pos=["red cat (as mined)"], pos_ids=["p"],
                             neg=["blue dog", "big fish"], neg_ids=["n1", "n2"]),
                TrainExample(query="small bird", pos=["big fish and small bird"], pos_ids=["n2"], neg=["blue dog"],
                             neg_ids=["n1"])]
    report = teacher_scores(examples, passages, MiningParams(teacher=str(reranker)), ModelParams(), "cpu", "fp32",
                            scorer_model=None, scorer_instruction="")
    assert report["kind"].startswith("cross-encoder logits")
    texts = {p.id: p.text for p in passages}
    import torch

    pairs = [(e.query, texts[i]) for e in examples for i in e.pos_ids + e.neg_ids]   # the corpus's text, by id
    cross_encoder = CrossEncoder(str(reranker), device="cpu")
    logits = cross_encoder.predict(pairs, activation_fn=torch.nn.Identity())
    got = [s for e in examples for s in e.pos_scores + e.neg_scores]
    assert np.allclose(got, logits, atol=1e-6) and len(set(np.round(got, 3))) == len(got)
    # The raw logits, not sentence-transformers' default sigmoid of them (which crowds a group's scores together).
    assert not np.allclose(got, cross_encoder.predict(pairs), atol=1e-3)
    assert [len(e.pos_scores) for e in examples] == [1, 1] and [len(e.neg_scores) for e in examples] == [2, 1]


def test_hub_cross_encoders_are_told_apart_by_their_hub_config_or_else_their_name(monkeypatch):
    import bgetune.negatives.teacher as teacher

    monkeypatch.setattr(teacher, "hub_architectures", lambda reference: None)   # no hub, nothing cached
    assert is_cross_encoder("BAAI/bge-reranker-v2-m3") and is_cross_encoder("cross-encoder/ms-marco-MiniLM-L6-v2")
    assert not is_cross_encoder("BAAI/bge-large-zh-v1.5")
    monkeypatch.setattr(teacher, "hub_architectures", lambda reference: ["XLMRobertaForSequenceClassification"])
    assert is_cross_encoder("someone/zh-medical-ranker")
    monkeypatch.setattr(teacher, "hub_architectures", lambda reference: ["BertModel"])
    assert not is_cross_encoder("someone/bge-reranker-lookalike-embedder")


def test_a_bi_encoder_teacher_encodes_each_passage_once_and_scores_its_corpus_text(tiny_model_dir, monkeypatch):
    import bgetune.search
    from bgetune.models import load_model

    passages = [Passage(id=i, doc_id=i, text=t, split="train")
                for i, t in (("p", "the red cat"), ("n1", "blue dog"), ("n2", "big fish and small bird"))]
    examples = [TrainExample(query="red cat", pos=["red cat (as mined)"], pos_ids=["p"], neg=["blue dog", "big fish"],
                             neg_ids=["n1", "n2"]),
                TrainExample(query="small bird", pos=["big fish and small bird"], pos_ids=["n2"], neg=["blue dog"],
                             neg_ids=["n1"])]
    calls = []
    real_encode = bgetune.search.encode
    monkeypatch.setattr(bgetune.search, "encode", lambda model, texts, *a, **k: calls.append(list(texts)) or
                        real_encode(model, texts, *a, **k))
    teacher_scores(examples, passages, MiningParams(teacher=str(tiny_model_dir)), ModelParams(), "cpu", "fp32",
                   scorer_model=None, scorer_instruction="")
    assert calls[1] == ["the red cat", "blue dog", "big fish and small bird"]   # one call, each passage once
    model = load_model(str(tiny_model_dir), query_max_length=64, passage_max_length=512)
    texts = {p.id: p.text for p in passages}
    for example in examples:
        query = model.encode([example.query], normalize_embeddings=True)[0]
        members = model.encode([texts[i] for i in example.pos_ids + example.neg_ids], normalize_embeddings=True)
        assert np.allclose(example.pos_scores + example.neg_scores, members @ query, atol=1e-5)
