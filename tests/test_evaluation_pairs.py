import numpy as np
import pytest

from bgetune.evaluation.leakage import find_leaks
from bgetune.evaluation.noise import CHITCHAT, load_noise_texts, noise_similarity
from bgetune.evaluation.pairs import best_threshold, pair_metrics, sample_negatives
from bgetune.records import InputError, Pair, Passage


def test_best_threshold_balanced_accuracy_hand_computed():
    # positives 0.9, 0.6; negatives 0.7, 0.2, 0.1: threshold 0.6 → TPR 1, TNR 2/3 → 5/6.
    threshold, accuracy = best_threshold(np.array([0.9, 0.6]), np.array([0.7, 0.2, 0.1]))
    assert threshold == pytest.approx(0.6) and accuracy == pytest.approx(5 / 6)
    # A tie between a positive and a negative cannot be split: both are in or out together.
    threshold, accuracy = best_threshold(np.array([0.5]), np.array([0.5]))
    assert accuracy == pytest.approx(0.5)


def test_pair_metrics_on_constructed_vectors():
    # 2 queries, 4 passages on orthogonal axes: each query is its positive's axis, so positives score 1, others 0.
    passages = np.eye(4, dtype=np.float32)
    queries = passages[:2].copy()
    metrics, scores = pair_metrics(queries, passages, [[0], [1]], negatives_per_query=2, seed=0)
    assert metrics["pair_auc"] == 1.0 and metrics["pair_accuracy"] == 1.0
    assert metrics["separation"] == pytest.approx(1.0)
    assert sorted(scores["positive"]) == [1.0, 1.0] and len(scores["negative"]) == 4
    # Negatives never include a positive and are seeded.
    negatives = sample_negatives(4, [[0], [1]], 3, seed=5)
    assert all(0 not in negatives[0] and 1 not in negatives[1] for _ in [0])
    assert negatives == sample_negatives(4, [[0], [1]], 3, seed=5)
    assert [len(n) for n in negatives] == [3, 3]


def test_noise_similarity_mean_p95_and_rate():
    queries = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    noise = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    metrics = noise_similarity(queries, noise, positive_scores=[0.9, 0.9])
    sims = np.array([1.0, 0.6, 0.0, 0.8])
    assert metrics["noise_similarity_mean"] == pytest.approx(sims.mean())
    assert metrics["noise_similarity_p95"] == pytest.approx(np.percentile(sims, 95))
    assert metrics["noise_over_positive_rate"] == 0.5      # query 0's noise twin (1.0) beats its positive (0.9)
    assert load_noise_texts("") == CHITCHAT


def test_noise_file_must_have_texts(tmp_path):
    (tmp_path / "noise.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(InputError, match="noise.txt: no noise texts"):
        load_noise_texts(str(tmp_path / "noise.txt"))


def test_leakage_check_fires_on_a_planted_leak():
    passages = [Passage(id="p1", doc_id="d1", text="冷藏室四度。", split="train"),
                Passage(id="p2", doc_id="d2", text="冷藏室 四度", split="test"),
                Passage(id="p3", doc_id="d3", text="滤网每月清洗。", split="test")]
    train = [Pair(qid="a", query="冰箱几度？", pos_ids=["p1"], source="existing", split="train")]
    clean = [Pair(qid="b", query="滤网多久洗", pos_ids=["p3"], source="existing", split="test")]
    assert find_leaks(train, clean, passages)["leaked_queries"] == 0
    leaky = clean + [Pair(qid="c", query="冰箱几度", pos_ids=["p2"], source="existing", split="test")]
    report = find_leaks(train, leaky, passages)
    assert report["leaked_queries"] == 1 and report["leaked_passages"] == 1
    assert report["examples"]["passages"] == ["p2"]
