"""bench/domain_runs.py --append: earlier variants are kept only when the runs are comparable."""
from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def domain_runs(load_bench):
    return load_bench("domain_runs")


def _args(tmp_path, **overrides):
    values = {"dataset": "meddialog", "suite": "levers", "steps": 150, "epochs": 1, "batch_size": 16,
              "chunk_chars": 0, "eval_every": 0, "out": str(tmp_path)}
    values.update(overrides)
    return Namespace(**values)


def _write_record(tmp_path, settings=None):
    record = {"dataset": "meddialog", "suite": "levers", "steps": 150, "epochs": 1, "batch_size": 16,
              "commit": "abc1234", "date": "2026-11-23",
              "results": {"bm25": {"ndcg@10": 0.18}, "base": {"ndcg@10": 0.01},
                          "default: expanded base, untrained": {"ndcg@10": 0.05},
                          "default": {"ndcg@10": 0.16, "vs_bm25": [-0.02, -0.03, -0.01]},
                          "mlm_warmup": {"ndcg@10": 0.18}},
              "full": {"bm25": {}, "base": {}, "default": {"queries": 3}, "mlm_warmup": {"queries": 3}},
              "variants": {"default": {"overrides": {}, "cpu_minutes": 50.0},
                           "mlm_warmup": {"overrides": {"vocab": {"warmup_steps": 300}}, "cpu_minutes": 70.0}}}
    if settings is not None:
        record["settings"] = settings
    (tmp_path / "meddialog_levers.json").write_text(json.dumps(record), encoding="utf-8")


def test_append_keeps_the_variants_not_run_again(domain_runs, tmp_path):
    _write_record(tmp_path)
    kept = domain_runs.previous_results(_args(tmp_path), rerun=["mlm_warmup", "distill_mlm"])
    assert list(kept["details"]) == ["default"]
    assert kept["details"]["default"]["commit"] == "abc1234"
    assert kept["details"]["default"]["cpu_minutes"] == 50.0
    # the variant's own rows come along (its untrained base too); the shared rows and re-run variants do not
    assert sorted(kept["results"]) == ["default", "default: expanded base, untrained"]
    assert kept["results"]["default"]["vs_bm25"] == [-0.02, -0.03, -0.01]
    assert list(kept["full"]) == ["default"]


def test_append_refuses_a_table_run_with_other_settings(domain_runs, tmp_path):
    _write_record(tmp_path, settings={"dataset": "meddialog", "suite": "levers", "steps": 150, "epochs": 1,
                                      "batch_size": 16, "chunk_chars": 200, "eval_every": 0})
    with pytest.raises(SystemExit, match=r"other settings \{'chunk_chars': \(200, 0\)\}"):
        domain_runs.previous_results(_args(tmp_path), rerun=["distill_mlm"])
    with pytest.raises(SystemExit, match="'steps': \\(150, 40\\)"):
        domain_runs.previous_results(_args(tmp_path, steps=40, chunk_chars=200), rerun=[])


def test_append_without_an_earlier_table_starts_empty(domain_runs, tmp_path):
    assert domain_runs.previous_results(_args(tmp_path), rerun=[]) == {"results": {}, "full": {}, "details": {}}


def test_training_notes_name_the_variants_on_another_schedule(domain_runs, tmp_path):
    details = {"default": {"overrides": {}, "train_steps": 150, "round2": None},
               "remine_round2": {"overrides": {"mining": {"rounds": 2}, "train": {"max_steps": 75}},
                                 "train_steps": 75, "round2": 75},
               "cached_batch64": {"overrides": {"train": {"batch_size": 64, "max_steps": 38}}, "train_steps": 38,
                                  "round2": None},
               "group8": {"overrides": {"train": {"train_group_size": 8, "max_steps": 75}}, "train_steps": 75,
                          "round2": None}}
    (line,) = [x for x in domain_runs.training_notes(_args(tmp_path), details) if x]
    assert "default" not in line
    assert "remine_round2: 75 + 75 steps (round 2 on re-mined negatives) × batch 16" in line
    assert "cached_batch64: 38 steps × batch 64" in line
    assert "group8: 75 steps × batch 16, group of 8" in line
    assert domain_runs.training_notes(_args(tmp_path), {"default": details["default"]}) == []


def test_the_machine_record_names_the_cpu_where_linux_says_it(domain_runs):
    info = domain_runs.machine()
    assert info["cpu_count"] >= 1
    if Path("/proc/cpuinfo").exists():
        assert info["cpu_model"] and isinstance(info["avx512"], bool) and isinstance(info["bf16_native"], bool)
        from bgetune.device import cpu_bf16_native
        assert info["bf16_native"] == cpu_bf16_native()   # the same flags read the same way


def test_steps_factor_scales_the_suites_steps_and_is_not_a_param(domain_runs):
    from bgetune.params import params_from_dict

    base = domain_runs.bench_params("meddialog", 150, 1, 16)
    group2 = params_from_dict(domain_runs.variant_dict(base, domain_runs.SUITES["levers"]["group2"]))
    assert group2.train.max_steps == 300 and group2.train.train_group_size == 2
    default = params_from_dict(domain_runs.variant_dict(base, domain_runs.SUITES["levers"]["default"]))
    assert default.train.max_steps == 150
    assert "steps_factor" in domain_runs.SUITES["levers"]["group2"]   # the suite itself is not changed


def test_per_query_scores_are_kept_and_found_once_the_work_folder_is_gone(domain_runs, tmp_path):
    from bgetune.evaluation.significance import compare_files

    work, args = tmp_path / "work", _args(tmp_path / "out")
    rows = {"default": [(1, 1.0), (3, 0.5), (None, 0.0)], "group2": [(1, 1.0), (1, 1.0), (2, 0.63093)]}
    for name, scores in rows.items():
        folder = work / name / "results" / "per_query"
        folder.mkdir(parents=True)
        (folder / "finetuned.jsonl").write_text("".join(json.dumps(
            {"qid": f"q{i}", "query": "secret text", "rank": rank, "ndcg@10": ndcg, "top3": [{"id": "p"}]}) + "\n"
            for i, (rank, ndcg) in enumerate(scores)), encoding="utf-8")
    domain_runs.keep_per_query(work, args, ["default", "group2", "bm25"])   # bm25's file does not exist: skipped
    kept = tmp_path / "out" / "per_query" / "meddialog_levers"
    assert sorted(p.name for p in kept.iterdir()) == ["default.jsonl", "group2.jsonl"]
    first = json.loads((kept / "default.jsonl").read_text().splitlines()[0])
    assert first == {"qid": "q0", "rank": 1, "ndcg@10": 1.0}            # scores only: no query text, no passages
    import shutil
    shutil.rmtree(work)
    assert domain_runs.per_query(work, "group2", args) == kept / "group2.jsonl"
    result = compare_files(domain_runs.per_query(work, "default", args), domain_runs.per_query(work, "group2", args))
    assert result["difference"] == pytest.approx((0.5 + 0.63093) / 3, abs=1e-6)


def test_the_bf16_variants_train_under_autocast_for_the_steps_their_speed_buys(domain_runs, tmp_path):
    from bgetune.params import params_from_dict

    cmrc = params_from_dict(domain_runs.variant_dict(domain_runs.bench_params("cmrc2018", 40, 1, 16),
                                                     domain_runs.SUITES["levers"]["dict_init_terms2000_group2_bf16"]))
    assert (cmrc.train.precision, cmrc.train.attention_dropout, cmrc.train.max_steps) == ("bf16", 0.0, 200)
    assert (cmrc.vocab.init, cmrc.vocab.top_terms, cmrc.train.train_group_size) == ("dictionary", 2000, 2)
    med = params_from_dict(domain_runs.variant_dict(domain_runs.bench_params("meddialog", 600, 3, 16),
                                                    domain_runs.SUITES["hour"]["fast_distill_dict_init_bf16_batch32"]))
    assert (med.train.precision, med.train.batch_size, med.train.max_steps, med.train.distill_weight) == \
        ("bf16", 32, 240, 1.0)
    remine = params_from_dict(domain_runs.variant_dict(
        domain_runs.bench_params("meddialog", 600, 3, 16),
        domain_runs.SUITES["hour"]["fast_distill_dict_init_bf16_batch32_remine"]))
    # two rounds of half the steps: the same 240 steps, the same recipe otherwise
    assert (remine.mining.rounds, remine.mining.teacher, remine.train.max_steps) == (2, "hybrid", 120)
    assert remine.model_copy(update={"mining": med.mining, "train": med.train}) == med
    assert remine.train.model_copy(update={"max_steps": 240}) == med.train
    longer = params_from_dict(domain_runs.variant_dict(
        domain_runs.bench_params("meddialog", 600, 3, 16),
        domain_runs.SUITES["hour"]["fast_distill_dict_init_bf16_batch32_remine_480"]))
    assert longer == remine.model_copy(update={"train": med.train})   # two rounds of the one-round run's 240 steps
    cmrc_base = domain_runs.bench_params("cmrc2018", 200, 1, 16)
    soup_default = params_from_dict(domain_runs.variant_dict(cmrc_base, domain_runs.SUITES["soup"]["default"]))
    cmrc_remine = params_from_dict(domain_runs.variant_dict(cmrc_base, domain_runs.SUITES["soup"]["remine"]))
    assert (cmrc_remine.mining.rounds, cmrc_remine.mining.teacher, cmrc_remine.train.max_steps) == (2, "", 100)
    assert cmrc_remine.model_copy(update={"mining": soup_default.mining,
                                          "train": soup_default.train}) == soup_default
    assert cmrc_remine.train.model_copy(update={"max_steps": 200}) == soup_default.train
    details = {"x": {"overrides": domain_runs.SUITES["levers"]["dict_init_terms2000_group2_bf16"], "train_steps": 200,
                     "round2": None}}
    (line,) = [x for x in domain_runs.training_notes(_args(tmp_path, steps=40), details) if x]
    assert line == "Schedules other than the title's: x: 200 steps × batch 16, group of 2, bf16 autocast."


def test_a_seed_variant_keeps_the_suites_split_and_vocabulary(domain_runs):
    from bgetune.params import params_from_dict

    base = domain_runs.bench_params("cmrc2018", 200, 1, 16)
    suite = domain_runs.SUITES["soup"]
    default = params_from_dict(domain_runs.variant_dict(base, suite["default"]))
    seeded = params_from_dict(domain_runs.variant_dict(base, suite["seed_7"]))
    # only the draws of mining and training change: the top-level seed (the split) and the vocabulary do not
    assert (seeded.mining.seed, seeded.train.seed, seeded.seed) == (7, 7, 42)
    assert (default.mining.seed, default.train.seed) == (None, None)
    assert seeded.model_copy(update={"mining": default.mining, "train": default.train}) == default
    assert domain_runs.vocab_key(seeded) == domain_runs.vocab_key(default)
    assert (default.train.train_group_size, default.train.precision) == (2, "bf16")
    # a record of the runs made with the bench key train_seed still rebuilds the same params
    legacy = {**suite["default"], "train_seed": 7}
    assert params_from_dict(domain_runs.variant_dict(base, legacy)) == seeded
    # the short runs are the default's recipe for half the steps, seed 42 being the default itself
    short = params_from_dict(domain_runs.variant_dict(base, suite["short_42"]))
    assert short.train.max_steps == 100 and short.model_copy(
        update={"train": default.train}) == default and short.train.model_copy(update={"max_steps": 200}) == default.train
    short_7 = params_from_dict(domain_runs.variant_dict(base, suite["short_7"]))
    assert (short_7.mining.seed, short_7.train.seed, short_7.train.max_steps) == (7, 7, 100)
    # InfoNCE's terms: the seed-42 recipe with only the loss's terms changed
    for name, changed in [("symmetric", {"directions": ["query_to_doc", "doc_to_query"],
                                         "partition_mode": "per_direction"}),
                          ("gte_loss", {"directions": ["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]}),
                          ("hardness_in_batch", {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0}),
                          ("hardness_all_negatives", {"hardness_mode": "all_negatives", "hardness_strength": 9.0}),
                          ("hardness_in_batch_alpha_5", {"hardness_mode": "in_batch_negatives", "hardness_strength": 5.0}),
                          ("hardness_in_batch_alpha_15", {"hardness_mode": "in_batch_negatives",
                                                          "hardness_strength": 15.0}),
                          ("hardness_hard_negatives", {"hardness_mode": "hard_negatives", "hardness_strength": 5.0})]:
        term = params_from_dict(domain_runs.variant_dict(base, suite[name]))
        assert term.train.model_dump() == {**default.train.model_dump(), **changed}, name
        assert term.model_copy(update={"train": default.train}) == default, name
    hardness = params_from_dict(domain_runs.variant_dict(base, suite["hardness_in_batch"]))
    group4 = params_from_dict(domain_runs.variant_dict(base, suite["group4"]))
    hardness_4 = params_from_dict(domain_runs.variant_dict(base, suite["hardness_in_batch_group4"]))
    assert hardness_4.train.model_dump() == {**group4.train.model_dump(), "hardness_mode": "in_batch_negatives",
                                             "hardness_strength": 9.0}
    assert hardness_4.model_copy(update={"train": group4.train}) == group4
    hardness_7 = params_from_dict(domain_runs.variant_dict(base, suite["hardness_in_batch_seed_7"]))
    assert (hardness_7.mining.seed, hardness_7.train.seed) == (7, 7)
    assert hardness_7.model_copy(update={"mining": hardness.mining,
                                         "train": hardness_7.train.model_copy(update={"seed": None})}) == hardness
    # every soup of every suite names variants that suite trains
    for suite in domain_runs.SUITES.values():
        for name, variant in suite.items():
            if "soup_of" in variant:
                assert all(n in suite and "soup_of" not in suite[n] for n in variant["soup_of"]), name
    # meddialog's hour: the seed-7 two-round run is the two-round recipe with other draws only
    hour, med = domain_runs.SUITES["hour"], domain_runs.bench_params("meddialog", 600, 3, 16, eval_every=150)
    remine = params_from_dict(domain_runs.variant_dict(med, hour["fast_distill_dict_init_bf16_batch32_remine"]))
    remine_7 = params_from_dict(domain_runs.variant_dict(med, hour["fast_distill_dict_init_bf16_batch32_remine_seed_7"]))
    assert (remine_7.mining.seed, remine_7.train.seed, remine_7.seed) == (7, 7, 42)
    assert (remine_7.mining.rounds, remine_7.mining.teacher, remine_7.train.max_steps) == (2, "hybrid", 120)
    assert remine_7.mining.model_copy(update={"seed": None}) == remine.mining
    assert remine_7.train.model_copy(update={"seed": None}) == remine.train
    assert remine_7.model_copy(update={"mining": remine.mining, "train": remine.train}) == remine
    # ... and the hardness runs are those two with hardness weighting only
    hardness_terms = {"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0}
    for plain, weighted in [("fast_distill_dict_init_bf16_batch32_remine",
                             "fast_distill_dict_init_bf16_batch32_remine_hardness"),
                            ("fast_distill_dict_init_bf16_batch32_remine_seed_7",
                             "fast_distill_dict_init_bf16_batch32_remine_hardness_seed_7")]:
        plain_params = params_from_dict(domain_runs.variant_dict(med, hour[plain]))
        weighted_params = params_from_dict(domain_runs.variant_dict(med, hour[weighted]))
        assert weighted_params.train.model_dump() == {**plain_params.train.model_dump(), **hardness_terms}, weighted
        assert weighted_params.model_copy(update={"train": plain_params.train}) == plain_params, weighted


def test_a_soup_refuses_ingredients_that_are_not_trained_variants(domain_runs, tmp_path):
    suite = {"default": {}, "seed_7": {"train": {"seed": 7}}, "soup": {"soup_of": ["default", "seed_7"]}}
    with pytest.raises(SystemExit, match=r"\['nope'\] are not trained variants"):
        domain_runs.soup_recipe(suite, ["default", "nope"], tmp_path)
    with pytest.raises(SystemExit, match=r"\['soup'\] are not trained variants"):
        domain_runs.soup_recipe(suite, ["default", "soup"], tmp_path)


def test_a_soup_is_the_merge_stages_uniform_average_of_its_ingredients(domain_runs, mined_project, tmp_path):
    import shutil

    import torch
    import yaml

    from bgetune.models import load_model
    from bgetune.params import params_from_dict
    from conftest import copy_project

    work = tmp_path / "work"
    first = copy_project(mined_project, work / "default")
    shutil.copytree(first / "models" / "base", first / "models" / "finetuned")
    second = work / "seed_7" / "models" / "finetuned"
    model = load_model(str(first / "models" / "base"))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5)        # the second run moved every weight by +0.5
    model.save(str(second))
    root = copy_project(mined_project, work / "soup")
    shutil.rmtree(root / "models")     # a soup trains nothing: its models are linked from the first ingredient

    suite = {"default": {}, "seed_7": {"train": {"seed": 7}}, "soup": {"soup_of": ["default", "seed_7"]}}
    raw = yaml.safe_load((root / "params.yaml").read_text())
    params = params_from_dict(domain_runs.deep_update(raw, domain_runs.soup_recipe(suite, ["default", "seed_7"],
                                                                                   work)))
    with pytest.raises(SystemExit, match="run the variant seed_8 first"):
        domain_runs.run_soup(params, root, work, ["default", "seed_8"])
    out = domain_runs.run_soup(params, root, work, ["default", "seed_7"])

    merged = load_model(str(root / "models" / "merged")).state_dict()
    base = load_model(str(first / "models" / "base")).state_dict()
    key = next(k for k in merged if k.endswith("word_embeddings.weight"))
    assert torch.allclose(merged[key], base[key] + 0.25, atol=1e-6)       # (θ + (θ + 0.5)) / 2
    assert out["details"]["merge_weights"] == {"base": 0.0, "finetuned": 0.5, str(second): 0.5}
    assert out["details"]["soup_of"] == ["default", "seed_7"]
    assert 0.0 <= out["headline"]["soup"]["ndcg@10"] <= 1.0 and out["full"]["soup"]["queries"] > 0
    # the soup's per-query scores are its merge's: what compare() pairs against the default
    assert domain_runs.per_query(work, "soup") == root / "results" / "per_query" / "merged.jsonl"
    line = domain_runs.training_notes(_args(tmp_path, steps=200), {"soup": out["details"]})[-1]
    assert line == "Schedules other than the title's: soup: the uniform average of default and seed_7 (merge.models)."


def test_the_bench_pins_the_words_bm25_and_the_cjk_variants_change_only_lexical_and_windows(domain_runs, tmp_path):
    from bgetune.params import LexicalParams, params_from_dict

    base = domain_runs.bench_params("cmrc2018", 200, 1, 16)
    suite = domain_runs.SUITES["soup"]
    stored = params_from_dict(domain_runs.variant_dict(base, suite["hardness_windows_80"]))
    cjk = params_from_dict(domain_runs.variant_dict(base, suite["hardness_windows_80_cjk_bigrams"]))
    assert stored.lexical == LexicalParams(tokens="words", k1=1.5, b=0.75)      # what every stored row ran with
    assert cjk.lexical == LexicalParams() == cjk.mining.bm25.lexical()       # CJK bigrams for evaluation and mining
    assert cjk.model_copy(update={"lexical": stored.lexical, "mining": stored.mining}) == stored
    assert cjk.mining.model_copy(update={"bm25": stored.mining.bm25}) == stored.mining
    # its own BM25 row is found in its folder and compared as the variant's own baseline
    work = tmp_path / "work"
    row = domain_runs.own_bm25_row("hardness_windows_80_cjk_bigrams")
    assert domain_runs.per_query(work, row) == work / "hardness_windows_80_cjk_bigrams" / "results" / "per_query" / \
        "bm25.jsonl"
    args = _args(tmp_path / "out")
    assert domain_runs.per_query(work, row, args).name == "hardness_windows_80_cjk_bigrams_own_bm25.jsonl"  # kept


def test_the_alt_ask_variant_is_the_hardness_run_with_the_patients_descriptions_as_more_training_pairs(domain_runs):
    from bgetune.params import params_from_dict

    hour, med = domain_runs.SUITES["hour"], domain_runs.bench_params("meddialog", 600, 3, 32, eval_every=150)
    hardness = params_from_dict(domain_runs.variant_dict(med, hour["fast_distill_dict_init_bf16_batch32_remine_hardness"]))
    alt = params_from_dict(domain_runs.variant_dict(med, hour["fast_distill_dict_init_bf16_batch32_remine_hardness_alt_ask"]))
    assert alt.data.qa_columns.alt_queries == ["ask"] and alt.data.qa_columns.query == ["title"]
    assert alt.qa_gen.existing.alt_query_splits == ["train"]
    assert alt.model_copy(update={"data": hardness.data}) == hardness


def test_the_seed_7_cjk_mining_run_is_the_seed_7_hardness_run_with_the_cjk_variants_bm25_and_windows(domain_runs):
    from bgetune.params import params_from_dict

    hour, med = domain_runs.SUITES["hour"], domain_runs.bench_params("meddialog", 600, 3, 32, eval_every=150)
    seed_7 = params_from_dict(domain_runs.variant_dict(med, hour["fast_distill_dict_init_bf16_batch32_remine_hardness_seed_7"]))
    cjk = params_from_dict(domain_runs.variant_dict(
        med, hour["fast_distill_dict_init_bf16_batch32_remine_hardness_windows_80_cjk_bigrams"]))
    cjk_7 = params_from_dict(domain_runs.variant_dict(
        med, hour["fast_distill_dict_init_bf16_batch32_remine_hardness_windows_80_cjk_bigrams_seed_7"]))
    assert cjk_7.model_copy(update={"lexical": seed_7.lexical, "eval": seed_7.eval,
                                    "mining": cjk_7.mining.model_copy(update={"bm25": seed_7.mining.bm25})}) == seed_7
    assert cjk_7.model_copy(update={"mining": cjk.mining, "train": cjk.train}) == cjk
    assert (cjk_7.mining.seed, cjk_7.train.seed) == (7, 7)


def test_the_title_prefix_pair_differs_only_in_its_passages_which_get_their_own_expanded_base(domain_runs):
    from bgetune.params import params_from_dict

    base = domain_runs.bench_params("cmrc2018", 80, 1, 16)
    suite = domain_runs.SUITES["title_prefix"]
    plain = params_from_dict(domain_runs.variant_dict(base, suite["dict_init_hardness"]))
    titled = params_from_dict(domain_runs.variant_dict(base, suite["dict_init_hardness_title_prefix"]))
    assert titled.chunk.title_prefix and not plain.chunk.title_prefix and titled.chunk.max_chars == 400
    assert titled.model_copy(update={"chunk": plain.chunk}) == plain
    assert domain_runs.vocab_key(titled) != domain_runs.vocab_key(plain)   # terms are mined from other passages
