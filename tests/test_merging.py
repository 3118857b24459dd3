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
