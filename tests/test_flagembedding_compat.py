"""The fine-tuned folder must load in FlagEmbedding's FlagModel and give the same embeddings as sentence-transformers."""
import numpy as np
import pytest


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_flagmodel_loads_our_saved_folder_with_identical_embeddings(tmp_path, pooling):
    from conftest import build_tiny_model
    from bgetune.models import load_model
    from bgetune.pipeline import _save_model
    from bgetune.vocab import expand_vocabulary

    model = load_model(str(build_tiny_model(tmp_path / "base", pooling=pooling)), 64)
    expand_vocabulary(model, ["猫", "狗"], init_noise=0.1, seed=0)
    _save_model(model, tmp_path / "finetuned", instruction="查询：")
    FlagModel = pytest.importorskip("FlagEmbedding").FlagModel
    flag = FlagModel(str(tmp_path / "finetuned"), pooling_method=pooling, use_fp16=False, devices="cpu",
                     query_instruction_for_retrieval="查询：", query_max_length=64, passage_max_length=64)
    texts = ["red cat 猫", "blue dog 狗"]
    ours = load_model(str(tmp_path / "finetuned"), 64)
    np.testing.assert_allclose(flag.encode_corpus(texts), ours.encode(texts, normalize_embeddings=True), atol=1e-5)
    np.testing.assert_allclose(flag.encode_queries(texts),
                               ours.encode(texts, prompt=ours.prompts["query"], normalize_embeddings=True), atol=1e-5)
