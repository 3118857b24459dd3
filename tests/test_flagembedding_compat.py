"""The saved folders must load in FlagEmbedding's FlagModel with the pooling their card names, and give the same
embeddings as sentence-transformers; with FlagModel's default (CLS) a mean-pooled model gives other vectors."""
import numpy as np
import pytest


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_flagmodel_loads_our_saved_folder_with_identical_embeddings(tmp_path, pooling):
    from conftest import build_tiny_model

    from bgetune.models import load_model, save_model
    from bgetune.vocab import expand_vocabulary

    model = load_model(str(build_tiny_model(tmp_path / "base", pooling=pooling)), query_max_length=32,
                       passage_max_length=64)
    expand_vocabulary(model, ["猫", "狗"], init_noise=0.1, seed=0)
    save_model(model, tmp_path / "finetuned", query_instruction="查询：", card="# card\n")
    FlagModel = pytest.importorskip("FlagEmbedding").FlagModel
    flag = FlagModel(str(tmp_path / "finetuned"), pooling_method=pooling, use_fp16=False, devices="cpu",
                     query_instruction_for_retrieval="查询：", query_max_length=32, passage_max_length=64)
    texts = ["red cat 猫", "blue dog 狗"]
    ours = load_model(str(tmp_path / "finetuned"), query_max_length=32, passage_max_length=64)
    assert ours.prompts["query"] == "查询："
    np.testing.assert_allclose(flag.encode_corpus(texts), ours.encode_document(texts, normalize_embeddings=True),
                               atol=1e-5)
    np.testing.assert_allclose(flag.encode_queries(texts), ours.encode_query(texts, normalize_embeddings=True),
                               atol=1e-5)
    if pooling == "mean":
        default = FlagModel(str(tmp_path / "finetuned"), use_fp16=False, devices="cpu")   # CLS: wrong for this model
        assert np.abs(default.encode_corpus(texts) - flag.encode_corpus(texts)).max() > 1e-3
