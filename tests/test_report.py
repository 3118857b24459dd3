"""The HTML report: self-contained, renders in headless Chromium, and its table matches the metrics JSON."""
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from bgetune.plots import score_histograms
from bgetune.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def write_metrics(folder):
    metrics = {
        "base": {"ndcg@10": 0.2512, "recall@1": 0.1, "recall@10": 0.4, "mrr@10": 0.2, "map@10": 0.19,
                 "pair_auc": 0.71, "separation": 0.05, "ood_ndcg@10": 0.6},
        "finetuned": {"ndcg@10": 0.4123456, "recall@1": 0.3, "recall@10": 0.6, "mrr@10": 0.35, "map@10": 0.33,
                      "pair_auc": 0.9, "separation": 0.21, "hybrid_ndcg@10": 0.45, "ood_ndcg@10": 0.55},
        "bm25": {"ndcg@10": 0.3, "recall@1": 0.2, "recall@10": 0.5, "mrr@10": 0.28, "map@10": 0.27},
    }
    for name, values in metrics.items():
        (folder / f"{name}.json").write_text(json.dumps(values))
    (folder / "curves").mkdir()
    for name in metrics:
        (folder / "curves" / f"{name}.json").write_text(json.dumps([{"k": 1, "recall": 0.1}, {"k": 10, "recall": 0.5}]))
    (folder / "merge.json").write_text(json.dumps({"weights": {"base": 0.5, "finetuned": 0.5},
                                                   "layer_changes": {"layer 0": 0.01}}))
    score_histograms({"positive": [0.8, 0.9], "negative": [0.1, 0.3]}, folder / "plots" / "similarity_base.png", "t")
    return metrics


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


def test_report_table_matches_metrics_and_is_self_contained(tmp_path):
    metrics = write_metrics(tmp_path)
    html = build_report(tmp_path)
    parser = Cells()
    parser.feed(html)
    expected = {(model, key): value for model, values in metrics.items() for key, value in values.items()}
    assert parser.cells == expected
    assert "0.4123" in html                                # shown rounded, stored exactly
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert not re.search(r"(src|href)=[\"']https?://", html)      # nothing fetched from a network
    assert (tmp_path / "plots" / "recall_at_k.png").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (make setup installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    metrics = write_metrics(tmp_path)
    page = tmp_path / "report.html"
    page.write_text(build_report(tmp_path), encoding="utf-8")
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
              f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = Cells()
    parser.feed(dom.stdout)                                 # the DOM as Chromium built it, not our string
    assert parser.cells[("finetuned", "ndcg@10")] == metrics["finetuned"]["ndcg@10"]
    assert len(parser.cells) == sum(len(v) for v in metrics.values())
    shot = tmp_path / "shot.png"
    result = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]


def test_report_says_whether_each_difference_is_real(tmp_path):
    write_metrics(tmp_path)
    (tmp_path / "significance.json").write_text(json.dumps({
        "finetuned_vs_base": {"difference": 0.16, "ci_low": 0.1, "ci_high": 0.22, "p_b_not_better": 0.0},
        "finetuned_vs_bm25": {"difference": 0.01, "ci_low": -0.02, "ci_high": 0.04, "p_b_not_better": 0.3}}))
    html = build_report(tmp_path)
    table = html[html.index("id='significance'"):]
    table = table[:table.index("</table>")]
    assert 'data-comparison="finetuned_vs_base" data-value="0.16"' in table
    assert "finetuned − base</th><td data-comparison=\"finetuned_vs_base\" data-value=\"0.16\">+0.1600</td>" \
           "<td>[+0.1000, +0.2200]</td><td>better</td>" in table
    assert "<td>[-0.0200, +0.0400]</td><td>no clear difference</td>" in table
