"""The stage functions called directly (no DVC) with the options that change their plumbing: LoRA, a second
stage with frozen embeddings, validation while training, domain terms, extra models."""
import json


from bgetune import pipeline
from bgetune.params import params_from_dict
from bgetune.records import read_json
from conftest import build_tiny_model
from test_pipeline_dvc import tiny_squad


def test_lora_two_stage_validation_and_terms(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "tiny.json").write_text(json.dumps(tiny_squad(), ensure_ascii=False))
    stage2 = tmp_path / "stage2"
    stage2.mkdir()
    (stage2 / "labelled.jsonl").write_text("\n".join(json.dumps(
        {"query": f"which {t}", "pos": [f"the {t} is here"], "neg": ["nothing"]}) for t in ["red cat", "blue dog"]))
    terms = tmp_path / "terms.txt"
    terms.write_text("# domain words\n红猫\n", encoding="utf-8")
    model = build_tiny_model(tmp_path / "tiny", pooling="mean")
    params = params_from_dict({
        "model": {"base": str(model), "max_seq_length": 32},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25},
        "vocab": {"expand_terms": True, "top_terms": 3, "min_term_count": 1, "term_file": str(terms)},
        "mining": {"num_negatives": 3, "encode_batch_size": 8, "dense": {"rank_min": 2, "rank_max": 10}},
        "train": {"epochs": 1, "batch_size": 4, "checkpoint_every": 0, "method": "lora", "eval_every": 2,
                  "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
                  "stage2": {"enabled": True, "folder": str(stage2), "epochs": 1}},
        "eval": {"k_values": [1, 10], "extra_models": {"tiny_again": str(model)}},
    })
    data, models, metrics = tmp_path / "data", tmp_path / "models", tmp_path / "metrics"
    pipeline.run_split(params, raw, data, metrics, models)
    pipeline.run_qa_gen(params, data, metrics)
    other = build_tiny_model(tmp_path / "scorer", pooling="mean", seed=7)
    scored_elsewhere = params.model_copy(update={"mining": params.mining.model_copy(update={"model": str(other)})})
    assert pipeline.run_mine(scored_elsewhere, data, models, metrics)["scoring_model"] == str(other)
    other_scores = [json.loads(line)["pos_scores"] for line in (data / "train.jsonl").read_text().splitlines()]
    mining = pipeline.run_mine(params, data, models, metrics)
    assert mining["vocab"]["terms_added"] >= 1 and "红猫" in mining["vocab"]["sample_terms"]
    assert mining["scoring_model"] == "expanded base"
    assert [json.loads(line)["pos_scores"] for line in (data / "train.jsonl").read_text().splitlines()] != other_scores
    summary = pipeline.run_train(params, data, models, metrics, progress=False)
    assert summary["method"] == "lora" and summary["lora"]["adapter_saved"]
    assert (models / "finetuned" / "lora_adapter" / "adapter_config.json").exists()
    assert summary["stage2"]["examples"] == 2 and summary["stage2"]["steps"] == 1
    assert summary["train"]["validation"]["history"], "validation ran every 2 steps"
    assert summary["vocab"]["tokens_per_passage_after"] <= summary["vocab"]["tokens_per_passage_before"]
    from sentence_transformers import SentenceTransformer
    plain = SentenceTransformer(str(models / "finetuned"), device="cpu")
    assert not any("lora" in key for key in plain.state_dict())
    assert plain.tokenizer.tokenize("红猫") == ["红猫"]
    merge = pipeline.run_merge(params, data, models, metrics, progress=False)
    assert merge["weights"] == {"base": 0.5, "finetuned": 0.5}
    result = pipeline.run_evaluate(params, "finetuned", data, models, metrics, progress=False)
    assert 0 <= result["ndcg@10"] <= 1 and 0 <= result["pair_auc"] <= 1
    # Per-query NDCG@10 (what significance tests resample) averages to the reported one.
    per_query = [json.loads(line) for line in (metrics / "per_query" / "finetuned.jsonl").read_text().splitlines()]
    assert len(per_query) == result["queries"]
    assert abs(sum(r["ndcg@10"] for r in per_query) / len(per_query) - result["ndcg@10"]) < 1e-5
    assert abs(sum(r["hybrid_ndcg@10"] for r in per_query) / len(per_query) - result["hybrid_ndcg@10"]) < 1e-5
    extra = pipeline.run_evaluate_extra(params, data, metrics, progress=False)
    assert set(extra) == {"tiny_again"} and (metrics / "extra" / "curves" / "tiny_again.json").exists()
    assert read_json(metrics / "extra.json")["tiny_again"]["reference"] == str(model)
