import pytest
import torch

from bgetune.merging import MergeError, merge_models, merge_state_dicts


def test_weighted_average_of_floats_and_first_model_integer_buffers():
    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([5, 5])}
    merged = merge_state_dicts([a, b], [0.25, 0.75])
    assert merged["w"].tolist() == [2.5, 5.0]
    assert merged["ids"].tolist() == [0, 1]
    assert merge_state_dicts([a, b], [1, 3])["w"].tolist() == [2.5, 5.0]   # weights are normalised


def test_shape_mismatch_is_explained():
    with pytest.raises(MergeError, match="different vocabularies"):
        merge_state_dicts([{"w": torch.zeros(3)}, {"w": torch.zeros(4)}], [0.5, 0.5])


def test_merged_model_keeps_base_pooling_and_loads_back(tiny_bge_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from bgetune.models import load_model, pooling_mode

    base, other = load_model(str(tiny_bge_dir), 64), load_model(str(tiny_bge_dir), 64)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    before = base.state_dict()["0.auto_model.encoder.layer.0.output.dense.weight"].clone() \
        if "0.auto_model.encoder.layer.0.output.dense.weight" in base.state_dict() else None
    merged = merge_models(base, [other], [0.5, 0.5])
    merged.save(str(tmp_path / "merged"))
    reloaded = SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    assert pooling_mode(reloaded) == "cls"
    key = next(k for k, v in reloaded.state_dict().items() if v.is_floating_point())
    original = load_model(str(tiny_bge_dir), 64).state_dict()[key]
    assert torch.allclose(reloaded.state_dict()[key], original + 0.5, atol=1e-6)
    del before


def test_merge_search_picks_the_known_best_weight_within_the_general_tolerance():
    from bgetune.merging import choose_merge_weight, search_merge_weights

    class Holder:
        def load_state_dict(self, state):
            self.w = float(state["w"][0])

    # In-domain NDCG peaks at w = 0.75; general NDCG falls as w grows (base 0.50).
    def evaluate(model):
        return {"val_ndcg@10": 1 - (model.w - 0.75) ** 2, "ood_ndcg@10": 0.5 - 0.1 * model.w}

    trials = search_merge_weights(Holder(), {"w": torch.tensor([0.0])}, {"w": torch.tensor([1.0])},
                                  [0.0, 0.25, 0.5, 0.75, 1.0], evaluate)
    assert [t["finetuned_weight"] for t in trials] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert choose_merge_weight(trials, None, 0.02)[0]["finetuned_weight"] == 0.75
    # Tolerance 0.05 keeps w <= 0.5 only: the best of those is 0.5.
    chosen, reason = choose_merge_weight(trials, 0.5, 0.05)
    assert chosen["finetuned_weight"] == 0.5 and "general" in reason
    chosen, reason = choose_merge_weight(trials[1:], 0.5, 0.0)
    assert chosen["finetuned_weight"] == 0.25 and reason.startswith("no weight")


def test_layer_changes_show_which_layer_moved():
    from bgetune.merging import layer_changes, layer_of

    base = {"0.auto_model.embeddings.word_embeddings.weight": torch.ones(4, 2),
            "0.auto_model.encoder.layer.0.attention.self.query.weight": torch.ones(2, 2),
            "0.auto_model.encoder.layer.1.output.dense.weight": torch.ones(2, 2),
            "0.auto_model.embeddings.position_ids": torch.arange(4)}
    tuned = {k: v.clone() for k, v in base.items()}
    tuned["0.auto_model.encoder.layer.1.output.dense.weight"] += 1.0     # only layer 1 moves, by 100%
    changes = {c["layer"]: c["relative_change"] for c in layer_changes(base, tuned)}
    assert changes == {"embeddings": 0.0, "layer 0": 0.0, "layer 1": 1.0}
    assert layer_of("encoder.layers.11.mlp.fc1.weight") == "layer 11" and layer_of("pooler.dense.bias") == "other"
