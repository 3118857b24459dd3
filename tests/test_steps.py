"""The stage functions called directly (no DVC), on a tiny project, with the options that change their plumbing."""
import json
import logging

import pytest
import torch

from bgetune.params import load_params
from bgetune.records import read_json, read_pairs, read_train_examples
from conftest import copy_project, run_steps, tiny_squad, write_project


def test_the_default_pipeline_writes_every_output_with_a_card(mined_project, tmp_path):
    root = copy_project(mined_project, tmp_path / "p")
    params = load_params(root / "params.yaml")
    run_steps(root, params, ("train", "merge"))
    for name in ("base", "finetuned", "merged", "bm25"):
        from bgetune.steps import evaluate

        evaluate.run(params, name, root, progress=False)
    run_steps(root, params, ("report", "publish"))
    headline = read_json(root / "metrics" / "finetuned.json")
    assert set(headline) == {"ndcg@10", "recall@1", "recall@10", "mrr@10", "map@10", "hybrid_ndcg@10",
                             "pair_auc"}   # recall@100 too when 100 is one of eval.k_values (it is not here)
    full = read_json(root / "results" / "eval" / "finetuned.json")
    # MRR and Recall at every k, both levels (documents span two passages), noise both ways, device recorded.
    assert {"mrr@1", "mrr@5", "mrr@10", "recall@1", "recall@5", "recall@10"} <= set(full["passage"])
    assert "document" in full and full["document"]["ndcg@10"] >= full["passage"]["ndcg@10"] - 1e-9
    assert {"noise_similarity_mean", "noise_query_top_mean"} <= set(full["noise"])
    assert full["runtime"]["device"] == "cpu" and full["runtime"]["precision"] == "fp32"
    train = read_json(root / "results" / "train.json")
    assert train["runtime"]["device"] == "cpu" and train["stage1"]["steps"] == train["stage1"]["loss_curve"][-1]["step"]
    loss_tsv = (root / "results" / "train_log" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [round(float(line.split("\t")[-1]), 5) for line in loss_tsv[1:]] == \
        [p["loss"] for p in train["stage1"]["loss_curve"]]          # the curve is train.json's
    card = (root / "models" / "publish" / "finetuned" / "README.md").read_text()
    assert str(params.model.base) in card and "language:\n- en" in card or "language:\n- zh" in card
    assert f"{headline['ndcg@10']:.4f}" in card and "BM25" in card and 'pooling_method="mean"' in card
    hybrid = full["hybrid"]   # the card says how to fuse with BM25, as the evaluation chose on val
    if hybrid["weights"][0] > 0:
        assert "## With BM25 (hybrid)" in card and f"{hybrid['weights'][0]} × dense" in card
        assert f"NDCG@10 {headline['hybrid_ndcg@10']:.4f}" in card
    else:
        assert "BM25 alone ranked best" in card
    assert "all-MiniLM" not in (root / "models" / "finetuned" / "README.md").read_text()   # not the base's card
    for folder in ("models/finetuned", "models/merged", "models/publish/finetuned"):
        for path in (root / folder).rglob("*"):
            assert path.stat().st_mode & 0o044 == 0o044, path          # readable like any other file
    assert (root / "results" / "report.html").stat().st_size > 10_000


def test_lora_two_stages_validation_terms_and_searched_merge(tmp_path, tiny_model_dir, caplog):
    root = tmp_path / "p"
    stage2 = root / "data" / "stage2"
    stage2.mkdir(parents=True)
    (stage2 / "labelled.jsonl").write_text("\n".join(json.dumps(
        {"query": f"which {t}", "pos": [f"the {t} is here"], "neg": ["nothing"]}) for t in ["red cat", "blue dog"]))
    terms = root / "data" / "terms.txt"
    terms.write_text("# domain words\n红猫\n", encoding="utf-8")
    general = tmp_path / "general.json"
    general.write_text(json.dumps({"data": tiny_squad()["data"][:3]}, ensure_ascii=False))
    write_project(root, tiny_model_dir,
                  vocab={"expand_terms": True, "top_terms": 3, "min_term_count": 1, "term_file": "data/terms.txt",
                         "init": "cooccurrence"},
                  train={"method": "lora", "eval_every": 2, "checkpoint_every": 2,
                         "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"], "lr": 3e-4},
                         "stage2": {"enabled": True, "epochs": 1, "loss": "cosine", "noise_weight": 0.5}},
                  merge={"search": "grid", "grid": [0.0, 0.5, 1.0]},
                  eval={"general": {"data": {"raw_dir": str(general)}, "max_queries": 4},
                        "extra_models": {"tiny": str(tiny_model_dir)}, "hybrid": {"tune": True, "method": "convex"}})
    params = load_params(root / "params.yaml")
    with caplog.at_level(logging.INFO, logger="bgetune"):
        summaries = run_steps(root, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "merge"))
    vocab = summaries["vocab"]
    lora_lines = [m for m in caplog.messages if m.startswith("LoRA r=4, alpha=8 on query, value: ")]
    assert len(lora_lines) == 1 and lora_lines[0].endswith(f", {vocab['tokens_added']} new token rows among them")
    assert "LoRA: the adapters train at lr 0.0003 (train.lora.lr)" in caplog.messages
    assert vocab["terms_added"] >= 1 and "红猫" in vocab["sample_terms"]
    init = vocab["init"]   # rows from co-occurrence + rows kept (tokens absent from the corpus) = every new token
    assert init["rows_from_cooccurrence"] >= 2 and init["rows_from_cooccurrence"] + init["rows_kept"] == \
        vocab["tokens_added"]
    card = (root / "models" / "base" / "README.md").read_text(encoding="utf-8")
    assert f"co-occurrence (PPMI + SVD): {init['rows_from_cooccurrence']} rows" in card
    train = summaries["train"]
    assert train["method"] == "lora" and train["lora"]["adapter_saved"]
    assert (root / "models" / "finetuned" / "lora_adapter" / "adapter_config.json").exists()
    assert train["stage2"]["examples"] == 2 and train["stage2"]["loss"] == "cosine"
    # Stage 1 trains the adapters at train.lora.lr (above train.lr's 5e-5); stage 2 keeps its own lr (1e-5).
    peak = {part: max(p["learning_rate"] for p in train[part]["lr_curve"]) for part in ("stage1", "stage2")}
    assert train["lora"]["lr"] == 3e-4 and 5e-5 < peak["stage1"] <= 3e-4 and peak["stage2"] <= 1e-5, peak
    assert "lr 0.0003 (LoRA adapters)" in (root / "models" / "finetuned" / "README.md").read_text(encoding="utf-8")
    assert train["stage1"]["validation"]["history"], "validation ran every 2 steps"
    assert not (root / "models" / "checkpoints").exists() or not any((root / "models" / "checkpoints").rglob("*.pt"))
    from sentence_transformers import SentenceTransformer

    plain = SentenceTransformer(str(root / "models" / "finetuned"), device="cpu")
    assert not any("lora" in key for key in plain.state_dict()) and plain.tokenizer.tokenize("红猫") == ["红猫"]
    merge = summaries["merge"]
    assert [t["finetuned_weight"] for t in merge["search"]["trials"]] == [0.0, 0.5, 1.0]
    assert merge["weights"]["finetuned"] == merge["search"]["chosen_finetuned_weight"]
    from bgetune.steps import evaluate

    result = evaluate.run(params, "finetuned", root, progress=False)
    assert 0 <= result["ndcg@10"] <= 1 and 0 <= result["pair_auc"] <= 1
    full = read_json(root / "results" / "eval" / "finetuned.json")
    assert full["hybrid"]["tuning"]["trials"] and full["general"]["ood_queries"] == 4
    hybrid = full["hybrid"]   # convex fusion: the val-chosen pair sums to 1 and is one of the trials
    assert hybrid["method"] == "convex" and abs(sum(hybrid["weights"]) - 1) < 1e-9
    assert hybrid["weights"] in [t["weights"] for t in hybrid["tuning"]["trials"]]
    per_query = [json.loads(line) for line in (root / "results" / "per_query" / "finetuned.jsonl").read_text()
                 .splitlines()]
    assert abs(sum(r["ndcg@10"] for r in per_query) / len(per_query) - result["ndcg@10"]) < 1e-5
    assert abs(sum(r["hybrid_ndcg@10"] for r in per_query) / len(per_query) - result["hybrid_ndcg@10"]) < 1e-5
    extra = evaluate.run(params, "extra_tiny", root, progress=False, extra_reference=str(tiny_model_dir))
    assert (root / "metrics" / "extra_tiny.json").exists() and 0 <= extra["ndcg@10"] <= 1


def test_the_vocab_stage_records_the_precision_its_warm_up_ran_in(tmp_path, tiny_model_dir):
    root = write_project(tmp_path / "p", tiny_model_dir, model={"precision": "bf16"},
                         vocab={"dictionary": "data/vocab/cedict.txt", "warmup_steps": 1, "warmup_batch_size": 4})
    (root / "data" / "vocab" / "cedict.txt").write_text("。 。 [ju4 hao4] /full stop/period/\n", encoding="utf-8")
    vocab = run_steps(root, load_params(root / "params.yaml"), ("split", "qa_gen", "vocab"))["vocab"]
    assert vocab["warmup"]["steps"] == 1 and vocab["runtime"]["precision"] == "bf16"   # not the expansion's fp32


def test_vocab_stage_starts_new_rows_from_a_project_dictionary_and_says_so_on_the_card(tmp_path, tiny_model_dir):
    root = tmp_path / "p"
    write_project(root, tiny_model_dir, vocab={"init": "dictionary", "dictionary": "data/vocab/cedict.txt"})
    # The tiny tokenizer lacks two of the corpus's characters: 。 (an entry) and . (none); 猫 is not in the corpus.
    (root / "data" / "vocab" / "cedict.txt").write_text("。 。 [ju4 hao4] /full stop/period/\n貓 猫 [mao1] /cat/\n",
                                                         encoding="utf-8")
    params = load_params(root / "params.yaml")
    vocab = run_steps(root, params, ("split", "qa_gen", "vocab"))["vocab"]
    assert vocab["tokens_added"] == 2 and vocab["init"] == {"rows_from_entry": 1, "rows_from_parts": 0,
                                                            "rows_kept": 1}
    card = (root / "models" / "base" / "README.md").read_text(encoding="utf-8")
    assert "English senses in `data/vocab/cedict.txt`: 1 from their own entry" in card


def test_document_level_evaluation_ranks_documents_by_their_best_passage(mined_project, tmp_path):
    root = copy_project(mined_project, tmp_path / "p", eval={"level": "document"})
    params = load_params(root / "params.yaml")
    from bgetune.steps import evaluate

    headline = evaluate.run(params, "base", root, progress=False)
    full = read_json(root / "results" / "eval" / "base.json")
    # A document counts when any of its passages ranks: at least as good as passage level, and here better.
    assert headline["ndcg@10"] == full["document"]["ndcg@10"] > full["passage"]["ndcg@10"]
    assert full["document"]["recall@10"] >= full["passage"]["recall@10"]


@pytest.mark.parametrize("tokens", ["words", "cjk_bigrams"])
def test_the_bm25_baseline_ranks_with_the_lexical_section(mined_project, tmp_path, tokens):
    from bgetune.evaluation.retrieval import bm25_rankings
    from bgetune.params import LexicalParams
    from bgetune.records import read_jsonl, read_passages
    from bgetune.steps import evaluate

    root = copy_project(mined_project, tmp_path / "p", lexical={"tokens": tokens, "k1": 0.9, "b": 0.4})
    params = load_params(root / "params.yaml")
    evaluate.run(params, "bm25", root, progress=False)
    assert read_json(root / "results" / "eval" / "bm25.json")["lexical"] == {"tokens": tokens, "k1": 0.9, "b": 0.4}
    passages = read_passages(root / "data" / "corpus.jsonl")
    rows = list(read_jsonl(root / "results" / "per_query" / "bm25.jsonl"))
    expected = bm25_rankings([p.text for p in passages], [p.id for p in passages], [r["query"] for r in rows], 100,
                             lexical=LexicalParams(tokens=tokens, k1=0.9, b=0.4))
    assert [[t["id"] for t in r["top3"]] for r in rows] == [ranking[:3] for ranking in expected]


def test_round_two_remines_with_the_round_one_model(mined_project, tmp_path):
    root = copy_project(mined_project, tmp_path / "p", mining={"rounds": 2})
    params = load_params(root / "params.yaml")
    train = run_steps(root, params, ("train",))["train"]
    assert train["round2"]["steps"] > 0 and train["rounds"]["round2_mining"]["negatives_per_strategy"]


def test_round_two_distils_from_the_hybrid_teacher_over_the_round_one_model(mined_project, tmp_path):
    import numpy as np

    from bgetune.lexical import BM25Index
    from bgetune.models import load_model
    from bgetune.negatives.teacher import hybrid_scores
    from bgetune.records import read_passages
    from bgetune.steps.train import remine

    root = copy_project(mined_project, tmp_path / "p", mining={"rounds": 2, "teacher": "hybrid"})
    params = load_params(root / "params.yaml")
    passages = read_passages(root / "data" / "corpus.jsonl")
    model = load_model(str(root / "models" / "base"))   # stands in for the round-1 model
    taught, rounds = remine(params, root, model, passages, "", "cpu", "fp32", False)
    assert rounds["round2_mining"]["teacher"]["teacher"] == "hybrid"
    # The same re-mining without a teacher gives the model's cosines; the hybrid teacher maps BM25 onto their range.
    plain = params.model_copy(update={"mining": params.mining.model_copy(update={"teacher": ""})})
    cosine, _ = remine(plain, root, model, passages, "", "cpu", "fp32", False)
    index = BM25Index([p.text for p in passages], params.mining.bm25.lexical())
    position = {p.id: i for i, p in enumerate(passages)}
    changed = 0
    for with_teacher, without in zip(taught, cosine):
        assert with_teacher.neg_ids == without.neg_ids
        cosines = np.asarray(without.pos_scores + without.neg_scores)
        lexical = np.asarray(index.scores(without.query, [position[i] for i in without.pos_ids + without.neg_ids]))
        expected = hybrid_scores(cosines, lexical)
        np.testing.assert_allclose(with_teacher.pos_scores + with_teacher.neg_scores, expected, atol=1e-5)
        changed += not np.allclose(expected, cosines, atol=1e-4)
    assert changed > len(taught) // 2   # the teacher is not the cosines under another name


def test_a_reranker_teacher_is_distilled_at_temperature_1_unless_set(mined_project, tmp_path):
    """A cross-encoder's logits span several units: read at the cosines' 0.02 its ranking would be one-hot."""
    from bgetune.models import load_model
    from conftest import build_tiny_xlmr

    reranker = str(build_tiny_xlmr(tmp_path / "tiny-bge-reranker", reranker=True))
    weights = {}
    for name, temperature in (("auto", "auto"), ("one", 1.0), ("cosine_like", 0.02)):
        root = copy_project(mined_project, tmp_path / name, mining={"teacher": reranker},
                            train={"distill_weight": 1.0, "distill_temperature": temperature, "max_steps": 2})
        params = load_params(root / "params.yaml")
        summaries = run_steps(root, params, ("mine_negatives", "train"))
        spread = [max(e.pos_scores + e.neg_scores) - min(e.pos_scores + e.neg_scores)
                  for e in read_train_examples(root / "data" / "train.jsonl")]
        assert max(spread) > 0.05   # the logits differ within a group: a temperature changes the targets
        distillation = summaries["train"]["distillation"]
        assert distillation["teacher"] == reranker and distillation["weight"] == 1.0
        weights[name] = load_model(str(root / "models" / "finetuned")).state_dict()
    assert distillation["temperature"] == 0.02 and distillation["why"] == "train.distill_temperature"
    assert read_json(tmp_path / "auto" / "results" / "train.json")["distillation"]["temperature"] == 1.0
    key = next(k for k in weights["auto"] if "encoder.layer.0.attention.self.query.weight" in k)
    assert torch.equal(weights["auto"][key], weights["one"][key])
    assert not torch.equal(weights["auto"][key], weights["cosine_like"][key])


def test_merge_examples_and_original_base(mined_project, tmp_path):
    root = copy_project(mined_project, tmp_path / "p", merge={"search": "examples", "base": "original",
                                                              "examples": 4})
    params = load_params(root / "params.yaml")
    merge = run_steps(root, params, ("train", "merge"))["merge"]
    assert merge["search"]["mode"] == "examples" and len(merge["search"]["losses"]) == 2
    assert sum(merge["weights"].values()) == pytest.approx(1.0)
    from bgetune.models import load_model

    merged = load_model(str(root / "models" / "merged"))
    tuned = load_model(str(root / "models" / "finetuned"))
    original_rows = load_model(params.model.base)[0].auto_model.get_input_embeddings().weight.shape[0]
    new_rows = slice(original_rows, None)
    # The original base has no rows for the added tokens: the merge takes them from the fine-tuned model as is.
    assert torch.equal(merged[0].auto_model.get_input_embeddings().weight[new_rows],
                       tuned[0].auto_model.get_input_embeddings().weight[new_rows])


def test_pairs_from_another_run_are_caught(mined_project, tmp_path):
    from bgetune.lineage import LineageError
    from bgetune.records import write_jsonl

    root = copy_project(mined_project, tmp_path / "p")
    pairs = read_pairs(root / "data" / "pairs" / "train.jsonl")
    pairs[0].pos_ids = ["other-run.json:9#0"]
    write_jsonl(root / "data" / "pairs" / "train.jsonl", pairs)
    with pytest.raises(LineageError, match="do not belong together.*other-run"):
        run_steps(root, load_params(root / "params.yaml"), ("mine_negatives",))


def test_merge_mixes_in_more_models_with_their_weights(mined_project, tmp_path, tiny_model_dir):
    root = copy_project(mined_project, tmp_path / "p", merge={"models": [{"path": str(tiny_model_dir),
                                                                           "weight": 1.0}],
                                                              "weights": [1.0, 2.0], "search": "off"})
    merge = run_steps(root, load_params(root / "params.yaml"), ("train", "merge"))["merge"]
    assert merge["weights"] == {"base": 0.25, "finetuned": 0.5, str(tiny_model_dir): 0.25}


def test_the_report_names_the_commit_and_only_code_or_params_edits_make_it_uncommitted(tmp_path):
    import subprocess

    from bgetune.steps.report import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for name in ("params.yaml", "dvc.lock"):
        (tmp_path / name).write_text("a: 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                          text=True).stdout.strip()
    assert git_commit(tmp_path) == head
    (tmp_path / "dvc.lock").write_text("a: 2\n")   # what `dvc repro` itself rewrites mid-run
    assert git_commit(tmp_path) == head
    (tmp_path / "params.yaml").write_text("a: 2\n")
    assert git_commit(tmp_path) == f"{head} (with uncommitted changes)"


def encoded_documents(monkeypatch) -> list[str]:
    """Every text sentence-transformers encodes as a document from now on in this test, in order."""
    from sentence_transformers import SentenceTransformer

    encoded = []
    plain_encode = SentenceTransformer.encode_document

    def counting_encode(self, texts, *args, **kwargs):
        encoded.extend(texts)
        return plain_encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode_document", counting_encode)
    return encoded


def test_hybrid_tuning_reuses_the_corpus_vectors_the_test_split_encoded(mined_project, tmp_path, monkeypatch):
    root = copy_project(mined_project, tmp_path / "p")
    params = load_params(root / "params.yaml")
    assert params.eval.hybrid.enabled and params.eval.hybrid.tune
    from bgetune.records import read_passages
    from bgetune.steps import evaluate

    encoded = encoded_documents(monkeypatch)
    evaluate.run(params, "base", root, progress=False)
    corpus = [p.text for p in read_passages(root / "data" / "corpus.jsonl")]
    # The corpus once (test ranking; val's hybrid tuning reuses it), noise texts aside.
    assert sorted(t for t in encoded if t in set(corpus)) == sorted(corpus)
    # The reused vectors choose the weights a fresh encode would.
    full = read_json(root / "results" / "eval" / "base.json")
    model, instruction, _ = evaluate.model_for(params, "base", root, "cpu", None)
    weights, tuning, _ = evaluate.tuned_hybrid_weights(params, root, model, instruction, "cpu", "fp32")
    assert weights == full["hybrid"]["weights"] and tuning["trials"] == full["hybrid"]["tuning"]["trials"]


def test_windows_index_each_long_passage_as_windows_once_and_report_them(mined_project, tmp_path, monkeypatch):
    root = copy_project(mined_project, tmp_path / "p", eval={"windows": {"max_chars": 24, "overlap_chars": 8}})
    params = load_params(root / "params.yaml")
    from bgetune.evaluation.retrieval import passage_windows
    from bgetune.records import read_passages
    from bgetune.steps import evaluate

    corpus = [p.text for p in read_passages(root / "data" / "corpus.jsonl")]
    windows, owners = passage_windows(corpus, 24, 8)
    assert len(windows) > len(set(owners.tolist())) > 0, "the tiny corpus has passages longer than 24 characters"
    encoded = encoded_documents(monkeypatch)
    headline = evaluate.run(params, "base", root, progress=False)
    full = read_json(root / "results" / "eval" / "base.json")
    summary = full["windows"]
    assert {k: summary[k] for k in ("max_chars", "overlap_chars", "passages", "passages_with_windows",
                                    "window_vectors")} == {"max_chars": 24, "overlap_chars": 8, "passages": len(corpus),
                                                           "passages_with_windows": len(set(owners.tolist())),
                                                           "window_vectors": len(windows)}
    # The weight val chose: the best trial of the grid, ties to the smaller weight.
    trials = summary["tuning"]["trials"]
    assert [t["weight"] for t in trials] == [round(0.1 * i, 1) for i in range(11)]
    best = max(t["val_ndcg@10"] for t in trials)
    assert summary["weight"] == min(t["weight"] for t in trials if t["val_ndcg@10"] == best)
    # The windows once, like the corpus (val's hybrid tuning reuses both).
    assert sorted(t for t in encoded if t in set(windows) - set(corpus)) == sorted(
        w for w in windows if w not in set(corpus))
    # The stage's ranking is the windowed one: the headline equals its per-query rows, and the windowed ranking
    # computed directly.
    per_query = [json.loads(line) for line in (root / "results" / "per_query" / "base.jsonl").read_text()
                 .splitlines()]
    assert abs(sum(r["ndcg@10"] for r in per_query) / len(per_query) - headline["ndcg@10"]) < 1e-5
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.testset import load_test_set

    test = load_test_set(root, params.eval, 100, lexical=params.lexical)
    model, instruction, _ = evaluate.model_for(params, "base", root, "cpu", None)
    ranked = dense_rankings(model, test.texts, test.ids, test.queries, 100, instruction, progress=False,
                            windows=(24, 8), window_weight=summary["weight"])
    assert abs(ranking_metrics(ranked.ids, test.relevant, [10])["ndcg@10"] - headline["ndcg@10"]) < 1e-6


def test_windows_at_weight_zero_rank_as_one_vector_per_passage(mined_project, tmp_path):
    from bgetune.steps import evaluate

    rows = {}
    for name, windows in (("off", {"max_chars": 0}), ("zero", {"max_chars": 24, "overlap_chars": 8, "tune": False,
                                                                "weight": 0.0})):
        root = copy_project(mined_project, tmp_path / name, eval={"windows": windows})
        evaluate.run(load_params(root / "params.yaml"), "base", root, progress=False)
        rows[name] = (root / "results" / "per_query" / "base.jsonl").read_text()
        if name == "zero":
            summary = read_json(root / "results" / "eval" / "base.json")["windows"]
            assert summary["weight"] == 0.0 and summary["tuning"] is None and summary["window_vectors"] > 0
    assert rows["zero"] == rows["off"]


def test_mining_and_training_seeds_make_a_second_run_on_the_same_split(mined_project, tmp_path):
    """mining.seed and train.seed: unset they are the top-level seed (same outputs); set, they re-draw the negatives
    and the data order of a second run (an ingredient of a model soup) while the split stays the top-level seed's."""
    from bgetune.models import load_model

    runs = {}
    for name, seed in (("unset", None), ("explicit", 42), ("other", 7)):
        root = copy_project(mined_project, tmp_path / name, mining={"seed": seed},
                            train={"seed": seed, "max_steps": 2})
        run_steps(root, load_params(root / "params.yaml"), ("mine_negatives", "train"))
        weights = load_model(str(root / "models" / "finetuned")).state_dict()
        runs[name] = ((root / "data" / "train.jsonl").read_bytes(), weights,
                      (root / "data" / "splits.json").read_bytes())
    key = next(k for k in runs["unset"][1] if k.endswith("word_embeddings.weight"))
    assert runs["explicit"][0] == runs["unset"][0]                       # seed 42 written out is the default
    assert torch.equal(runs["explicit"][1][key], runs["unset"][1][key])
    assert runs["other"][0] != runs["unset"][0]                          # other negatives drawn ...
    assert not torch.equal(runs["other"][1][key], runs["unset"][1][key])  # ... and other weights
    assert runs["other"][2] == runs["unset"][2]                          # on the same split


def test_learned_term_weights_reach_the_hybrid_the_table_the_report_and_the_card(mined_project, tmp_path,
                                                                                  monkeypatch):
    from bgetune.evaluation import retrieval
    from bgetune.lexical import BM25Index, term_recall_weights
    from bgetune.records import read_passages
    from bgetune.steps import evaluate
    from bgetune.text import lexical_tokens

    plain_root = copy_project(mined_project, tmp_path / "plain", eval={"term_weights": {"method": "off"}})
    evaluate.run(load_params(plain_root / "params.yaml"), "bm25", plain_root, progress=False)
    off = read_json(plain_root / "results" / "eval" / "bm25_term_weights.json")
    assert off["method"] == "off" and off["weights"] == {}
    assert "term_weighted" not in read_json(plain_root / "results" / "eval" / "bm25.json")

    # Dense weight 0 without tuning: the hybrid's ranking is its lexical half's, which the bm25 stage scores alone.
    root = copy_project(mined_project, tmp_path / "p", eval={
        "term_weights": {"method": "term_recall", "smoothing": 2.0, "tune": False},   # on, not left to val
        "hybrid": {"tune": False, "weights": [0.0, 1.0]}})
    params = load_params(root / "params.yaml")
    run_steps(root, params, ("train", "merge"))
    built = {}     # the term weights of every BM25 each evaluation builds (the tiny set's BM25 is perfect either way)

    def recording_index(texts, lexical=None, term_weights=None):
        built.setdefault(current, []).append(term_weights)
        return BM25Index(texts, lexical, term_weights)

    monkeypatch.setattr(retrieval, "BM25Index", recording_index)
    for current in ("finetuned", "merged", "bm25", "base"):
        evaluate.run(params, current, root, progress=False)
    # The baseline stays plain BM25.
    assert read_json(root / "metrics" / "bm25.json") == read_json(plain_root / "metrics" / "bm25.json")
    table = read_json(root / "results" / "eval" / "bm25_term_weights.json")
    text_of = {p.id: p.text for p in read_passages(root / "data" / "corpus.jsonl")}
    train = [(p.query, "\n".join(text_of[i] for i in p.pos_ids)) for p in read_pairs(root / "data/pairs/train.jsonl")]
    expected = term_recall_weights(train, lambda text: lexical_tokens(text, params.lexical.tokens), 2.0)
    assert table["method"] == "term_recall" and table["train_questions"] == len(train)
    assert table["weights"] == pytest.approx(expected) and min(expected.values()) < 1 < max(expected.values())
    # A dense evaluation ranks test and val with the learned weights (the hybrid's half and its tuning); the bm25
    # stage ranks the plain baseline, then the weighted BM25 beside it.
    assert built["finetuned"] == [expected, expected]
    assert built["bm25"] == [None, expected]
    weighted = read_json(root / "results" / "eval" / "bm25.json")["term_weighted"]
    assert weighted["term_weights"]["terms"] == len(expected)
    hybrid = read_json(root / "results" / "eval" / "finetuned.json")["hybrid"]
    assert hybrid["bm25"]["term_weights"]["train_questions"] == len(train)
    assert hybrid["passage"]["ndcg@10"] == pytest.approx(weighted["passage"]["ndcg@10"])
    run_steps(root, params, ("report", "publish"))
    report = (root / "results" / "report.html").read_text()
    assert "BM25 with learned term weights" in report and f"{weighted['passage']['ndcg@10']:.4f}" in report
    # Publish ships the table beside the model whose hybrid used it; the card points to it. (Dense weight 0: the
    # card says BM25 alone ranked best and names the weighted BM25 to use.)
    published = root / "models" / "publish" / "finetuned"
    assert read_json(published / "bm25_term_weights.json") == table
    assert "term recall" in (published / "README.md").read_text() and "bm25_term_weights.json in this folder" in \
        (published / "README.md").read_text()


@pytest.mark.parametrize("overrule", [False, True])
def test_val_decides_whether_the_hybrid_keeps_the_learned_term_weights(mined_project, tmp_path, monkeypatch,
                                                                       overrule):
    """eval.term_weights.tune: the hybrid's val tuning fuses the model with plain and with weighted BM25, each with
    its own weights, and keeps the better (ties: plain); the test hybrid is then the run with the weights off or
    fixed on. ``overrule``: the choice forced the other way, so that both branches run whatever the tiny set says."""
    from bgetune.evaluation import hybrid as hybrid_module
    from bgetune.evaluation import retrieval
    from bgetune.lexical import BM25Index
    from bgetune.steps import evaluate

    learned = {"method": "term_recall", "smoothing": 2.0}
    roots = {"off": copy_project(mined_project, tmp_path / "off", eval={"term_weights": {"method": "off"}}),
             "on": copy_project(mined_project, tmp_path / "on", eval={"term_weights": {**learned, "tune": False}}),
             "val": copy_project(mined_project, tmp_path / "val", eval={"term_weights": {**learned, "tune": True}})}
    hybrids = {}
    for name in ("off", "on"):
        evaluate.run(load_params(roots[name] / "params.yaml"), "base", roots[name], progress=False)
        hybrids[name] = read_json(roots[name] / "results" / "eval" / "base.json")["hybrid"]
    built, real_tune_lexical = [], hybrid_module.tune_lexical

    def recording_index(texts, lexical=None, term_weights=None):
        built.append(term_weights is not None)
        return BM25Index(texts, lexical, term_weights)

    def overruled(*args, **kwargs):
        chosen, options = real_tune_lexical(*args, **kwargs)
        return ("plain" if chosen == "term_weighted" else "term_weighted"), options

    monkeypatch.setattr(retrieval, "BM25Index", recording_index)
    if overrule:
        monkeypatch.setattr(hybrid_module, "tune_lexical", overruled)
    evaluate.run(load_params(roots["val"] / "params.yaml"), "base", roots["val"], progress=False)
    hybrid = read_json(roots["val"] / "results" / "eval" / "base.json")["hybrid"]
    choice = hybrid["tuning"]["bm25"]
    # Each option's val NDCG@10 is the best the fixed runs' tunings found.
    assert choice["plain_val_ndcg@10"] == max(t["val_ndcg@10"] for t in hybrids["off"]["tuning"]["trials"])
    assert choice["term_weighted_val_ndcg@10"] == max(t["val_ndcg@10"] for t in hybrids["on"]["tuning"]["trials"])
    val_choice = "term_weighted" if choice["term_weighted_val_ndcg@10"] > choice["plain_val_ndcg@10"] else "plain"
    assert choice["chosen"] == (val_choice if not overrule else {"plain": "term_weighted",
                                                                   "term_weighted": "plain"}[val_choice])
    same = hybrids["on" if choice["chosen"] == "term_weighted" else "off"]
    assert hybrid["weights"] == same["weights"] and hybrid["passage"] == same["passage"]
    assert hybrid["tuning"]["trials"] == same["tuning"]["trials"]
    assert ("term_weights" in hybrid["bm25"]) == (choice["chosen"] == "term_weighted")
    # BM25s built: test and val plain, val weighted beside it, and test again with the weights only if kept.
    assert built == [False, False, True] + ([True] if choice["chosen"] == "term_weighted" else [])
    evaluate.run(load_params(roots["val"] / "params.yaml"), "bm25", roots["val"], progress=False)
    run_steps(roots["val"], load_params(roots["val"] / "params.yaml"), ("report",))
    report = (roots["val"] / "results" / "report.html").read_text()
    kept = "weighted" if choice["chosen"] == "term_weighted" else "plain"
    assert f"base: {kept} (val hybrid NDCG@10 {choice['term_weighted_val_ndcg@10']:.4f} weighted" in report
    from bgetune.steps.publish import hybrid_facts

    assert hybrid_facts(roots["val"], "base")["bm25_choice"] == choice      # what the card says (test_modelcard)


def test_a_bge_m3_shaped_base_runs_every_stage_with_its_own_tokenizer_and_pooling(tmp_path):
    """XLM-RoBERTa with a SentencePiece-style tokenizer and CLS pooling (bge-m3's shape), not BERT: term expansion,
    the masked-LM warm-up's head, training, merging, evaluation and the published card all follow the base."""
    from sentence_transformers import SentenceTransformer

    from bgetune.models import pooling_mode
    from bgetune.steps import evaluate
    from conftest import build_tiny_xlmr

    base = build_tiny_xlmr(tmp_path / "models" / "tiny-bge-m3")
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "data" / "terms.txt").write_text("红猫\nblue\n", encoding="utf-8")   # blue reads as ▁blue already
    write_project(root, base, vocab={"expand_terms": True, "top_terms": 5, "min_term_count": 1,
                                     "term_file": "data/terms.txt", "warmup_steps": 2, "warmup_scope": "all"},
                  chunk={"title_prefix": True})
    params = load_params(root / "params.yaml")
    summaries = run_steps(root, params, ("split", "qa_gen", "vocab", "mine_negatives", "train", "merge"))
    vocab = summaries["vocab"]   # the corpus's words are pieces already (▁cat): only the user's term is new
    assert vocab["terms_added"] == 1 and vocab["sample_terms"] == ["红猫"] and vocab["warmup"]["steps"] == 2
    assert vocab["user_terms"] == 2 and vocab["user_terms_already_tokens"] == 1
    for name in ("base", "finetuned", "merged", "bm25"):
        evaluate.run(params, name, root, progress=False)
    run_steps(root, params, ("report", "publish"))
    before = SentenceTransformer(str(root / "models" / "base"), device="cpu")
    after = SentenceTransformer(str(root / "models" / "finetuned"), device="cpu")
    assert type(after[0].auto_model).__name__ == "XLMRobertaModel" and pooling_mode(after) == "cls"
    assert after.tokenizer.tokenize("红猫") == ["红猫"] and len(after.tokenizer) == len(before.tokenizer)
    assert not torch.equal(before[0].auto_model.embeddings.word_embeddings.weight,
                           after[0].auto_model.embeddings.word_embeddings.weight)
    card = (root / "models" / "publish" / "finetuned" / "README.md").read_text(encoding="utf-8")
    assert 'pooling_method="cls"' in card and "query_instruction_for_retrieval" not in card
    passages = read_json(root / "results" / "data.json")["corpus"]
    # each passage starts with its article's title: half of them did already ("red cat 0 在 一 了 …")
    assert (passages["title_prefixed"], passages["title_prefix_not_needed"]) == (8, 8)
    assert "began with their title on a line of their own (`chunk.title_prefix` put it before 8 of them)" in card
    headline = read_json(root / "metrics" / "finetuned.json")
    assert f"{headline['ndcg@10']:.4f}" in card and 0 <= headline["pair_auc"] <= 1


def test_batches_by_domain_when_asked_and_as_before_when_the_corpus_has_one(mined_project, tmp_path, caplog):
    from safetensors.torch import load_file

    from bgetune.records import read_jsonl, read_passages, write_jsonl

    def weights(root):
        return load_file(str(root / "models" / "finetuned" / "model.safetensors"))

    plain = copy_project(mined_project, tmp_path / "plain")
    run_steps(plain, load_params(plain / "params.yaml"), ("train",))
    one = copy_project(mined_project, tmp_path / "one", train={"batch_by": "domain"})
    with caplog.at_level("INFO", logger="bgetune"):
        summary = run_steps(one, load_params(one / "params.yaml"), ("train",))["train"]
    assert "the examples hold one domain" in caplog.text and "batch_groups" not in summary["stage1"]
    assert all(torch.equal(a, b) for a, b in zip(weights(plain).values(), weights(one).values()))
    two = copy_project(mined_project, tmp_path / "two", train={"batch_by": "domain"})
    passages = read_passages(two / "data" / "corpus.jsonl")   # every other document in a second domain
    documents = sorted({p.doc_id for p in passages})
    for p in passages:
        p.domain = "birds" if documents.index(p.doc_id) % 2 else "cats"
    write_jsonl(two / "data" / "corpus.jsonl", passages)
    caplog.clear()
    with caplog.at_level("INFO", logger="bgetune"):
        summary = run_steps(two, load_params(two / "params.yaml"), ("train",))["train"]
    examples = list(read_jsonl(two / "data" / "train.jsonl"))
    domain_of = {p.id: p.domain for p in passages}
    expected = {d: sum(domain_of[e["pos_ids"][0]] == d for e in examples) for d in ("birds", "cats")}
    assert summary["stage1"]["batch_groups"] == expected and min(expected.values()) > 0
    assert "each batch from one domain, 2 domains" in caplog.text
    assert not all(torch.equal(a, b) for a, b in zip(weights(plain).values(), weights(two).values()))


def test_a_reranker_trained_by_the_rerank_stage_reorders_the_hybrid_in_evaluate(mined_project, tmp_path):
    from bgetune.reranking import WEIGHTS
    from bgetune.steps import evaluate

    root = copy_project(mined_project, tmp_path / "p",
                        rerank={"enabled": True, "batch_size": 2, "hard_negatives": 2, "checkpoint_every": 2})
    params = load_params(root / "params.yaml")
    run_steps(root, params, ("train", "rerank"))
    trained = read_json(root / "results" / "rerank.json")
    questions = len(read_train_examples(root / "data" / "train.jsonl"))
    assert trained["enabled"] and trained["groups"] + trained["left_out"] == trained["questions"] == questions
    assert trained["runtime"]["device"] == "cpu" and trained["steps"] > 0
    assert not (root / "models" / "checkpoints" / "rerank").exists()          # cleared once the stage finished
    headline = evaluate.run(params, "finetuned", root, progress=False)
    full = read_json(root / "results" / "eval" / "finetuned.json")
    block = full["reranked"]
    assert block["weight"] in WEIGHTS and [t["weight"] for t in block["tuning"]["trials"]] == list(WEIGHTS)
    assert block["candidates"] == "hybrid" and block["top_k"] == 20
    assert headline["reranked_ndcg@10"] == block["passage"]["ndcg@10"]
    rows = [json.loads(line) for line in (root / "results" / "per_query" / "finetuned.jsonl").read_text().splitlines()]
    assert sum(r["reranked_ndcg@10"] for r in rows) / len(rows) == pytest.approx(headline["reranked_ndcg@10"], abs=1e-5)
    # At weight 0 the reranker's scores count for nothing: the hybrid's own ranking, number for number.
    fixed = copy_project(root, tmp_path / "w0", rerank={"tune": False, "weight": 0.0})
    at_zero = evaluate.run(load_params(fixed / "params.yaml"), "finetuned", fixed, progress=False)
    assert at_zero["reranked_ndcg@10"] == at_zero["hybrid_ndcg@10"]
    run_steps(root, params, ("merge",))
    evaluate.run(params, "merged", root, progress=False)
    evaluate.run(params, "base", root, progress=False)
    evaluate.run(params, "bm25", root, progress=False)
    assert "reranked_ndcg@10" not in read_json(root / "metrics" / "base.json")   # base runs before any reranker
    run_steps(root, params, ("report",))
    significance = read_json(root / "results" / "significance.json")
    assert {"finetuned_reranked_vs_finetuned_hybrid", "merged_reranked_vs_merged_hybrid"} <= set(significance)
    gain = significance["finetuned_reranked_vs_finetuned_hybrid"]["difference"]
    assert gain == pytest.approx(headline["reranked_ndcg@10"] - headline["hybrid_ndcg@10"], abs=1e-5)
    assert "reranked NDCG@10" in (root / "results" / "report.html").read_text()


def test_with_the_reranker_off_the_stage_trains_nothing_and_evaluate_reports_no_reranking(mined_project, tmp_path):
    from bgetune.steps import evaluate

    root = copy_project(mined_project, tmp_path / "p")
    params = load_params(root / "params.yaml")
    assert not params.rerank.enabled
    run_steps(root, params, ("train", "rerank"))
    assert read_json(root / "results" / "rerank.json") == {"enabled": False}
    assert [p.name for p in (root / "models" / "reranker").iterdir()] == ["README.md"]
    assert "reranked_ndcg@10" not in evaluate.run(params, "finetuned", root, progress=False)
    assert "reranked" not in read_json(root / "results" / "eval" / "finetuned.json")
