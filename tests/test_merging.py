import logging

import pytest
import torch

from bgetune.merging import (MergeError, choose_grid_weight, example_weights, layer_changes, layer_of, merge_models,
                             merge_state_dicts, search_merge_weights)


def test_weighted_average_of_floats_and_first_model_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([5, 5])}
    merged = merge_state_dicts([a, b], [0.25, 0.75])
    assert merged["w"].tolist() == [2.5, 5.0]
    assert merged["ids"].tolist() == [0, 1]
    assert merge_state_dicts([a, b], [1, 3])["w"].tolist() == [2.5, 5.0]   # weights are normalised


def test_any_number_of_models():
    states = [{"w": torch.tensor([float(i)])} for i in (0, 3, 6)]
    assert merge_state_dicts(states, [1, 1, 1])["w"].item() == pytest.approx(3.0)
    assert merge_state_dicts(states, [0, 1, 1])["w"].item() == pytest.approx(4.5)


def test_rows_a_smaller_vocabulary_lacks_come_from_the_models_that_have_them():
    original = {"emb": torch.tensor([[1.0], [1.0]])}                      # the base as shipped: 2 tokens
    tuned = {"emb": torch.tensor([[3.0], [3.0], [7.0]])}                  # + 1 token added and trained
    merged = merge_state_dicts([original, tuned], [0.5, 0.5])["emb"]
    assert merged.squeeze(1).tolist() == [2.0, 2.0, 7.0]                  # the new row is not diluted


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_models_on_the_gpu_merge_there_and_a_base_kept_on_the_cpu_joins_them():
    original = {"emb": torch.tensor([[1.0], [1.0]]), "b": torch.tensor([2.0, 4.0])}
    tuned = {"emb": torch.tensor([[3.0], [3.0], [7.0]], device="cuda"), "b": torch.tensor([4.0, 8.0], device="cuda")}
    merged = merge_state_dicts([original, tuned], [0.5, 0.5])
    assert merged["emb"].device.type == "cuda" and merged["emb"].squeeze(1).tolist() == [2.0, 2.0, 7.0]
    assert merged["b"].tolist() == [3.0, 6.0]


def test_incompatible_shapes_and_weights_are_explained():
    with pytest.raises(MergeError, match="shape"):
        merge_state_dicts([{"w": torch.zeros(3, 2)}, {"w": torch.zeros(3, 4)}], [0.5, 0.5])
    with pytest.raises(MergeError, match="different parameters"):
        merge_state_dicts([{"w": torch.zeros(3)}, {"v": torch.zeros(3)}], [0.5, 0.5])
    with pytest.raises(MergeError, match="positive sum"):
        merge_state_dicts([{"w": torch.zeros(3)}, {"w": torch.zeros(3)}], [0.0, 0.0])


def test_merged_model_keeps_base_pooling_and_loads_back(tiny_bge_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from bgetune.models import load_model, pooling_mode

    base, other = load_model(str(tiny_bge_dir)), load_model(str(tiny_bge_dir))
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    merged = merge_models(base, [other], [0.5, 0.5])
    merged.save(str(tmp_path / "merged"))
    reloaded = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    assert pooling_mode(reloaded) == "cls"
    key = next(k for k, v in reloaded.state_dict().items() if v.is_floating_point())
    original = load_model(str(tiny_bge_dir)).state_dict()[key]
    assert torch.allclose(reloaded.state_dict()[key], original + 0.5, atol=1e-6)


def grid_trials():
    class Holder:
        def load_state_dict(self, state):
            self.w = float(state["w"][0])

    # In-domain NDCG peaks at w = 0.75 (0.9 at w = 1); general NDCG falls as w grows (base 0.50).
    def evaluate(model):
        return {"val_ndcg@10": 1 - (model.w - 0.75) ** 2 * 1.6, "ood_ndcg@10": 0.5 - 0.1 * model.w}

    return search_merge_weights(Holder(), {"w": torch.tensor([0.0])}, {"w": torch.tensor([1.0])},
                                [0.0, 0.25, 0.5, 0.75, 1.0], evaluate)


def test_grid_keeps_the_in_domain_gain_and_then_the_most_general_ability(caplog):
    with caplog.at_level(logging.INFO, logger="bgetune"):
        trials = grid_trials()
    # each trial's log line names the weight it tried (it once printed only the metrics)
    assert "merge search: fine-tuned weight 0.75 → val_ndcg@10 1.0000, ood_ndcg@10 0.4250" in caplog.messages
    assert [t["finetuned_weight"] for t in trials] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # Fine-tuned (w=1) val 0.9: 98% keeps w in {0.5 (0.9), 0.75 (1.0), 1.0}; the most general of those is 0.5.
    chosen, reason = choose_grid_weight(trials, 0.98, base_ood=0.5, ood_tolerance=0.02)
    assert chosen["finetuned_weight"] == 0.5 and "general" in reason
    # Asking for more than the fine-tuned model's own val NDCG@10 leaves only the val peak, w = 0.75.
    assert choose_grid_weight(trials, 1.05, 0.5, 0.02)[0]["finetuned_weight"] == 0.75
    # No general set: the smallest fine-tuned weight that keeps the gain.
    chosen, reason = choose_grid_weight(trials, 0.98, None, 0.02)
    assert chosen["finetuned_weight"] == 0.5 and "no general set" in reason


def test_example_weights_favour_the_model_with_the_lower_loss():
    weights = example_weights([2.0, 1.0, 3.0], temperature=1.0)
    assert sum(weights) == pytest.approx(1.0) and weights[1] > weights[0] > weights[2]
    assert example_weights([2.0, 1.0], temperature=1e6) == pytest.approx([0.5, 0.5], abs=1e-5)


def test_layer_changes_show_which_layer_moved():
    base = {"0.auto_model.embeddings.word_embeddings.weight": torch.ones(4, 2),
            "0.auto_model.encoder.layer.0.attention.self.query.weight": torch.ones(2, 2),
            "0.auto_model.encoder.layer.1.output.dense.weight": torch.ones(2, 2),
            "0.auto_model.embeddings.position_ids": torch.arange(4)}
    tuned = {k: v.clone() for k, v in base.items()}
    tuned["0.auto_model.encoder.layer.1.output.dense.weight"] += 1.0     # only layer 1 moves, by 100%
    changes = {c["layer"]: c["relative_change"] for c in layer_changes(base, tuned)}
    assert changes == {"embeddings": 0.0, "layer 0": 0.0, "layer 1": 1.0}
    assert layer_of("encoder.layers.11.mlp.fc1.weight") == "layer 11" and layer_of("pooler.dense.bias") == "other"
