"""One self-contained HTML report from the metrics folder: the metrics table, every plot embedded (base64 PNG),
the merge weights, and the mining and data summaries. It opens offline: no script, font or style from a CDN.

Each metrics cell carries ``data-model`` and ``data-metric`` attributes and the exact JSON value in ``data-value``,
so a test (or a person with devtools) can check the table against metrics/<model>.json.

Example::

    html = build_report("metrics")
    Path("metrics/report.html").write_text(html)
"""
from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path

MODELS = ("base", "finetuned", "merged", "bm25")
COLUMNS = [
    ("ndcg@10", "NDCG@10"), ("recall@1", "R@1"), ("recall@10", "R@10"), ("recall@100", "R@100"),
    ("mrr@10", "MRR@10"), ("map@10", "MAP@10"), ("pair_auc", "pair AUC"), ("separation", "separation"),
    ("noise_similarity_p95", "noise p95"), ("noise_over_positive_rate", "noise > pos"),
    ("hybrid_ndcg@10", "hybrid NDCG@10"), ("ood_ndcg@10", "general NDCG@10"),
]


def load_model_metrics(metrics_dir: Path) -> dict[str, dict]:
    rows = {}
    for name in MODELS:
        path = metrics_dir / f"{name}.json"
        if path.exists():
            rows[name] = json.loads(path.read_text(encoding="utf-8"))
    extra = metrics_dir / "extra.json"
    if extra.exists():
        for name, values in json.loads(extra.read_text(encoding="utf-8")).items():
            rows[f"extra:{name}"] = values
    return rows


def recall_curves_plot(metrics_dir: Path) -> Path | None:
    from bgetune.plots import curves

    series = {}
    for path in sorted((metrics_dir / "curves").glob("*.json")):
        points = json.loads(path.read_text(encoding="utf-8"))
        series[path.stem] = [(p["k"], p["recall"]) for p in points]
    if not series:
        return None
    out = metrics_dir / "plots" / "recall_at_k.png"
    curves(series, out, "Recall@k on the test split", "k", "Recall@k", log_x=True)
    return out


def training_curve_plot(metrics_dir: Path) -> Path | None:
    from bgetune.plots import curves

    tsv = metrics_dir / "train_log" / "plots" / "metrics" / "train" / "loss.tsv"
    if not tsv.exists():
        return None
    lines = tsv.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    step, loss = header.index("step"), header.index("loss")
    points = [(float(r.split("\t")[step]), float(r.split("\t")[loss])) for r in lines[1:] if r.strip()]
    out = metrics_dir / "plots" / "train_loss.png"
    curves({"loss": points}, out, "Training loss", "step", "InfoNCE loss")
    return out


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


def _summary_table(title: str, mapping: dict) -> str:
    def shown(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(shown(v))}</td></tr>"
                   for k, v in mapping.items())
    return f"<h2>{html.escape(title)}</h2><table class='kv'>{rows}</table>"


def _significance_table(significance: dict) -> str:
    rows = []
    for name, r in significance.items():
        model, reference = name.split("_vs_")
        verdict = ("better" if r["ci_low"] > 0 else "worse" if r["ci_high"] < 0 else "no clear difference")
        rows.append(f'<tr><th>{html.escape(model)} − {html.escape(reference)}</th>'
                    f'<td data-comparison="{html.escape(name)}" data-value="{r["difference"]!r}">'
                    f'{r["difference"]:+.4f}</td><td>[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]</td>'
                    f'<td>{verdict}</td></tr>')
    return ("<h2>Is the difference real? (NDCG@10, paired bootstrap over the test queries)</h2><table id='significance'>"
            "<thead><tr><th>comparison</th><th>difference</th><th>95% interval</th><th>verdict</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def build_report(metrics_dir: str | Path) -> str:
    metrics_dir = Path(metrics_dir)
    recall_curves_plot(metrics_dir)
    training_curve_plot(metrics_dir)
    models = load_model_metrics(metrics_dir)
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    body = []
    for name, values in models.items():
        cells = []
        for key, _ in COLUMNS:
            if key in values:
                cells.append(f'<td data-model="{html.escape(name)}" data-metric="{html.escape(key)}" '
                             f'data-value="{values[key]!r}">{_cell(values[key])}</td>')
            else:
                cells.append('<td class="na">–</td>')
        body.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    sections = [f"<h2>Test-split metrics</h2><table id='metrics'><thead><tr><th>model</th>{header}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>"]
    base = models.get("base", {}).get("ndcg@10")
    if base:
        gains = {name: f"{values['ndcg@10'] / base:.2f}× base" for name, values in models.items()
                 if "ndcg@10" in values}
        sections.append(_summary_table("NDCG@10 relative to the base model", gains))
    significance = _read(metrics_dir / "significance.json")
    if significance:
        sections.append(_significance_table(significance))
    merge = _read(metrics_dir / "merge.json")
    if merge:
        sections.append(_summary_table("Merge", {"weights": merge.get("weights"),
                                                 **({"search": merge["search"]} if "search" in merge else {})}))
        if merge.get("layer_changes"):
            sections.append(_summary_table("Relative weight change per layer", merge["layer_changes"]))
    mining = _read(metrics_dir / "mining.json")
    if mining:
        sections.append(_summary_table("Mining", {k: mining[k] for k in (
            "queries", "negatives_per_strategy", "drops", "mean_rank_per_strategy", "mean_score_per_strategy",
            "queries_without_negatives", "timings") if k in mining}))
    data = _read(metrics_dir / "data.json")
    if data:
        corpus = data.get("corpus", {})
        sections.append(_summary_table("Data", {"ingest": data.get("ingest"), **{k: corpus[k] for k in (
            "passages", "passages_per_split", "existing_pairs_per_split", "duplicates", "split_groups") if k in corpus}}))
    train = _read(metrics_dir / "train.json")
    if train:
        sections.append(_summary_table("Training", train.get("train", {})))
    plots = sorted((metrics_dir / "plots").glob("*.png"))
    if plots:
        sections.append("<h2>Plots</h2><div class='plots'>" + "".join(_image(p) for p in plots) + "</div>")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bgetune report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; font-size: 13px; }}
table.kv td {{ text-align: left; font-family: monospace; white-space: pre-wrap; max-width: 70em; }}
th {{ background: #f3f3f3; }}
td.na {{ color: #aaa; text-align: center; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }} img {{ max-width: 640px; border: 1px solid #eee; }}
</style></head><body>
<h1>bgetune report</h1><p>Generated {stamp} from <code>{html.escape(str(metrics_dir))}</code>.</p>
{''.join(sections)}
</body></html>
"""


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
