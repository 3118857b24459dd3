"""The HTML report: self-contained, renders in headless Chromium, its table matches the metrics JSON, and it says
what produced it, whether differences are real, what to deploy, and which queries fail worst."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from bgetune.plots import score_histograms
from bgetune.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]


def write_results(root, tuned_ndcg=0.4123456, significance=None):
    metrics = {
        "base": {"ndcg@10": 0.2512, "recall@1": 0.1, "recall@10": 0.4, "mrr@10": 0.2, "map@10": 0.19,
                 "pair_auc": 0.71, "hybrid_ndcg@10": 0.33},
        "finetuned": {"ndcg@10": tuned_ndcg, "recall@1": 0.3, "recall@10": 0.6, "mrr@10": 0.35, "map@10": 0.33,
                      "pair_auc": 0.9, "hybrid_ndcg@10": 0.52},
        "merged": {"ndcg@10": 0.40, "recall@1": 0.3, "recall@10": 0.6, "mrr@10": 0.35, "map@10": 0.33,
                   "pair_auc": 0.9, "hybrid_ndcg@10": 0.5},
        "bm25": {"ndcg@10": 0.45, "recall@1": 0.2, "recall@10": 0.5, "mrr@10": 0.28, "map@10": 0.27},
    }
    (root / "metrics").mkdir(parents=True)
    (root / "results" / "eval").mkdir(parents=True)
    for name, values in metrics.items():
        (root / "metrics" / f"{name}.json").write_text(json.dumps(values))
    (root / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"weights": [1.0, 1.0], "rrf_k": 60}, "general": {"ood_ndcg@10": 0.30}}))
    (root / "results" / "eval" / "merged.json").write_text(json.dumps({"general": {"ood_ndcg@10": 0.34}}))
    (root / "results" / "eval" / "base.json").write_text(json.dumps(
        {"noise": {"noise_similarity_mean": 0.41, "noise_over_positive_rate": 0.3, "noise_query_top_mean": 0.62,
                   "noise_query_over_median_positive": 0.5}}))
    (root / "results" / "merge.json").write_text(json.dumps({"weights": {"base": 0.5, "finetuned": 0.5}}))
    (root / "results" / "vocab.json").write_text(json.dumps({"unk_rate_before": 0.7, "tokens_added": 863}))
    (root / "results" / "mining.json").write_text(json.dumps(
        {"queries": 10, "negatives_per_strategy": {"dense": 20, "random": 9}, "mean_rank_per_strategy": {"dense": 7.5},
         "mean_score_per_strategy": {"dense": 0.61, "random": 0.2}, "drops": {"is_positive": 2},
         "queries_without_negatives": 0}))
    score_histograms({"positive": [0.8, 0.9], "negative": [0.1, 0.3]}, root / "results" / "plots" / "sim.png", "t")
    significance = significance or {
        "finetuned_vs_base": {"difference": 0.16, "ci_low": 0.1, "ci_high": 0.22, "p_b_not_better": 0.0},
        "finetuned_vs_bm25": {"difference": -0.04, "ci_low": -0.08, "ci_high": -0.01, "p_b_not_better": 1.0}}
    per_query = [{"qid": f"q{i}", "query": f"query {i}", "rank": i + 1, "ndcg@10": round(1 / (i + 1), 3),
                  "pos_ids": ["p1"], "top3": [{"id": "p2", "text": "a wrong passage"}]} for i in range(12)]
    return metrics, significance, per_query


class Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self.images = {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-metric" in attrs:
            self.cells[(attrs["data-model"], attrs["data-metric"])] = float(attrs["data-value"])
        if tag == "img":
            self.images.append(attrs["src"])


def page(root, **kwargs):
    metrics, significance, per_query = write_results(root, **kwargs)
    html = build_report(root, {"base model": "bundled:all-MiniLM-L6-v2", "git commit": "abc1234"}, significance,
                        per_query, {"p1": "the right passage", "p2": "a wrong passage"})
    return metrics, html


def test_report_table_matches_metrics_and_is_self_contained(tmp_path):
    metrics, html = page(tmp_path)
    parser = Cells()
    parser.feed(html)
    assert parser.cells == {(m, k): v for m, values in metrics.items() for k, v in values.items()}
    assert "0.4123" in html                                # shown rounded, stored exactly
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert not re.search(r"(src|href)=[\"']https?://", html)      # nothing fetched from a network
    assert "abc1234" in html and "bundled:all-MiniLM-L6-v2" in html   # what produced it
    assert "Recall@k" in html and "paired bootstrap" in html          # terms explained
    noise = html[html.index("id='noise'"):]
    assert "<td>0.4100</td><td>0.3000</td><td>0.6200</td><td>0.5000</td>" in noise[:noise.index("</table>")]


def test_report_explains_a_loss_to_bm25_and_says_what_to_deploy(tmp_path):
    _, html = page(tmp_path)
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "below BM25" in verdict and "70% of tokens were unknown" in verdict
    assert "Deploy: finetuned + BM25 (hybrid) (NDCG@10 0.520)" in verdict and "k = 60" in verdict
    assert "general set 0.340 vs 0.300 (+0.040)" in verdict   # what merging bought


def test_a_tie_with_bm25_is_called_one_and_dictionary_started_rows_are_named(tmp_path):
    metrics, significance, per_query = write_results(tmp_path, significance={
        "finetuned_vs_bm25": {"difference": -0.07, "ci_low": -0.17, "ci_high": 0.03, "p_b_not_better": 0.9}})
    (tmp_path / "results" / "vocab.json").write_text(json.dumps(
        {"unk_rate_before": 0.7, "tokens_added": 863, "init": {"rows_from_entry": 861, "rows_from_parts": 0,
                                                               "rows_kept": 2}}))
    html = build_report(tmp_path, {}, significance, per_query, {})
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "The fine-tuned model shows no clear difference from BM25 here" in verdict
    assert "863 tokens, started from their dictionary senses, had to be learned" in verdict


def test_a_hybrid_that_val_gave_no_dense_weight_is_not_recommended_over_bm25(tmp_path):
    """Val tuned the fine-tuned model's RRF weight to 0: its "hybrid" is BM25's ranking, so BM25 is the advice."""
    metrics, significance, per_query = write_results(tmp_path)
    metrics["bm25"]["ndcg@10"] = 0.52   # the hybrid's score: it is BM25's ranking
    (tmp_path / "metrics" / "bm25.json").write_text(json.dumps(metrics["bm25"]))
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"weights": [0.0, 1.0], "rrf_k": 60}, "general": {"ood_ndcg@10": 0.30}}))
    html = build_report(tmp_path, {}, significance, per_query, {})
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "Deploy: bm25 (NDCG@10 0.520)." in verdict and "(hybrid)" not in verdict.split("Deploy:")[1]


def test_report_says_when_fine_tuning_beats_bm25(tmp_path):
    _, html = page(tmp_path, tuned_ndcg=0.6, significance={
        "finetuned_vs_bm25": {"difference": 0.15, "ci_low": 0.05, "ci_high": 0.25, "p_b_not_better": 0.0}})
    assert "beats BM25 on this test set" in html


def test_report_shows_the_ten_worst_queries_with_what_came_back(tmp_path):
    _, html = page(tmp_path)
    worst = html[html.index("id='worst'"):]
    worst = worst[:worst.index("</table>")]
    assert worst.count("<tr>") == 11                               # header + 10
    assert "query 11" in worst and "query 0<" not in worst        # the lowest NDCG first; the best left out
    assert "the right passage" in worst and "a wrong passage" in worst


def test_report_says_whether_each_difference_is_real(tmp_path):
    _, html = page(tmp_path)
    table = html[html.index("id='significance'"):]
    table = table[:table.index("</table>")]
    assert 'data-comparison="finetuned_vs_base" data-value="0.16"' in table
    assert "<td>[+0.1000, +0.2200]</td><td>better</td>" in table
    assert "<td>[-0.0800, -0.0100]</td><td>worse</td>" in table


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (make setup installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    metrics, html = page(tmp_path)
    report = tmp_path / "report.html"
    report.write_text(html, encoding="utf-8")
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Cells()
    parser.feed(dom.stdout)                                 # the DOM as Chromium built it, not our string
    assert parser.cells[("finetuned", "ndcg@10")] == metrics["finetuned"]["ndcg@10"]
    assert len(parser.cells) == sum(len(v) for v in metrics.values())
    shot = tmp_path / "shot.png"
    result = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,900", report.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]


def test_a_convex_hybrid_is_deployed_with_its_score_recipe(tmp_path):
    """A hybrid by score fusion: the advice says how to normalise and weigh the scores, not RRF's constant."""
    metrics, significance, per_query = write_results(tmp_path)
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.3, 0.7], "rrf_k": 60}, "general": {"ood_ndcg@10": 0.30}}))
    html = build_report(tmp_path, {}, significance, per_query, {})
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "Deploy: finetuned + BM25 (hybrid) (NDCG@10 0.520)." in verdict
    assert "min-max normalise" in verdict and "[0.3, 0.7]" in verdict and "RRF" not in verdict.split("Deploy:")[1]
    # results from before the lexical section: the BM25 they used, jieba's words
    assert "with BM25 (k1 1.5, b 0.75) over jieba&#x27;s search-mode words" in verdict


def test_the_hybrid_advice_names_the_bm25_the_evaluation_fused(tmp_path):
    metrics, significance, per_query = write_results(tmp_path)
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.6, 0.4], "rrf_k": 60,
                    "bm25": {"tokens": "cjk_bigrams", "k1": 1.2, "b": 0.75}}}))
    verdict = build_report(tmp_path, {}, significance, per_query, {})
    verdict = verdict[verdict.index("<h2>Verdict</h2>"):verdict.index("<h2>Test-split metrics</h2>")]
    assert ("with BM25 (k1 1.2, b 0.75) over each Chinese character and each adjacent pair (other scripts as "
            "words), as bgetune does") in verdict


def test_the_advice_says_to_index_windows_when_the_evaluation_did(tmp_path):
    metrics, significance, per_query = write_results(tmp_path)
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.3, 0.7], "rrf_k": 60},
         "windows": {"max_chars": 80, "overlap_chars": 40, "passages": 10, "passages_with_windows": 4,
                     "window_vectors": 12, "weight": 0.8}}))
    html = build_report(tmp_path, {}, significance, per_query, {})
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "Deploy: finetuned + BM25 (hybrid)" in verdict
    assert "windows of whole sentences up to 80 characters (overlap up to 40)" in verdict
    assert "rank a passage by (1 − 0.8) × its own cosine + 0.8 × its best vector" in verdict
    # Val gave the windows no weight: one vector per passage is what to index.
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.3, 0.7], "rrf_k": 60},
         "windows": {"max_chars": 80, "overlap_chars": 40, "window_vectors": 12, "weight": 0.0}}))
    assert "windows of whole sentences" not in build_report(tmp_path, {}, significance, per_query, {})


def test_the_hybrid_advice_says_when_its_lead_over_bm25_is_noise(tmp_path):
    metrics, significance, per_query = write_results(tmp_path)
    significance["finetuned_hybrid_vs_bm25"] = {"difference": 0.006, "ci_low": -0.02, "ci_high": 0.03,
                                                "p_b_not_better": 0.3, "queries": 40}
    html = build_report(tmp_path, {}, significance, per_query, {})
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "Deploy: finetuned + BM25 (hybrid)" in verdict
    assert "+0.006 (95% interval [-0.020, +0.030]): within the noise of 40 test queries" in verdict
    significance["finetuned_hybrid_vs_bm25"].update(ci_low=0.01)
    verdict = build_report(tmp_path, {}, significance, per_query, {})
    assert "[+0.010, +0.030])." in verdict and "within the noise" not in verdict


def test_the_verdict_warns_when_val_choices_rest_on_few_questions(tmp_path):
    metrics, significance, per_query = write_results(tmp_path)

    def verdict_of():
        html = build_report(tmp_path, {}, significance, per_query, {})
        return html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]

    assert "val questions" not in verdict_of()                # no tuning recorded: nothing to say
    for val_queries, warned in ((21, True), (99, True), (100, False), (599, False)):
        (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
            {"hybrid": {"weights": [0.8, 0.2], "tuning": {"val_queries": val_queries, "trials": []}}}))
        assert (f"rest on {val_queries} val questions" in verdict_of()) is warned
    # Windows tuned on val, the hybrid not: its count serves.
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"weights": [0.8, 0.2], "tuning": None}, "windows": {"tuning": {"val_queries": 30}}}))
    assert "rest on 30 val questions" in verdict_of()


def test_the_provenance_seed_names_the_stages_own_seeds_where_a_run_sets_them():
    from bgetune.params import params_from_dict
    from bgetune.steps.report import seed_line

    assert seed_line(params_from_dict({"seed": 42})) == "42"
    assert seed_line(params_from_dict({"seed": 42, "train": {"seed": 7}})) == "42 (training 7)"
    assert seed_line(params_from_dict({"seed": 3, "mining": {"seed": 7}, "train": {"seed": 7}})) == \
        "3 (mining 7, training 7)"
    assert seed_line(params_from_dict({"seed": 42, "train": {"seed": 42}})) == "42"


def test_a_reranker_that_beats_the_hybrid_is_deployed_on_top_of_it_and_its_gain_judged(tmp_path):
    metrics, significance, per_query = write_results(tmp_path)
    html = build_report(tmp_path, {}, significance, per_query, {})
    assert "reranked NDCG@10" not in html          # no model was reranked: no column for it
    metrics["finetuned"]["reranked_ndcg@10"] = 0.55
    (tmp_path / "metrics" / "finetuned.json").write_text(json.dumps(metrics["finetuned"]))
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.6, 0.4], "rrf_k": 60},
         "reranked": {"candidates": "hybrid", "top_k": 20, "weight": 0.4}}))
    significance["finetuned_reranked_vs_finetuned_hybrid"] = {"difference": 0.03, "ci_low": 0.01, "ci_high": 0.05,
                                                              "p_b_not_better": 0.0, "queries": 40}
    html = build_report(tmp_path, {}, significance, per_query, {})
    parser = Cells()
    parser.feed(html)
    assert parser.cells[("finetuned", "reranked_ndcg@10")] == 0.55
    assert ("bm25", "reranked_ndcg@10") not in parser.cells
    verdict = html[html.index("<h2>Verdict</h2>"):html.index("<h2>Test-split metrics</h2>")]
    assert "Deploy: finetuned + BM25 (hybrid) + reranker (NDCG@10 0.550)." in verdict
    assert "weights [0.6, 0.4] (dense, BM25)" in verdict             # the hybrid it reorders
    assert "top 20 with models/reranker (a cross-encoder) and order them by 0.4 × its score + 0.6 × the hybrid" \
        in verdict
    assert "The reranker adds +0.030 (95% interval [+0.010, +0.050])." in verdict
    # Val gave the reranker no weight: its order is the hybrid's, and the hybrid is what to deploy.
    (tmp_path / "results" / "eval" / "finetuned.json").write_text(json.dumps(
        {"hybrid": {"method": "convex", "weights": [0.6, 0.4], "rrf_k": 60},
         "reranked": {"candidates": "hybrid", "top_k": 20, "weight": 0.0}}))
    verdict = build_report(tmp_path, {}, significance, per_query, {})
    assert "Deploy: finetuned + BM25 (hybrid) (NDCG@10 0.520)." in verdict and "models/reranker" not in verdict
