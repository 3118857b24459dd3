"""One self-contained HTML page from the results: what produced it, the headline table, whether each difference
is real, what to deploy, the worst test queries, mining and data summaries as tables, every plot, and a line per
term. It opens offline: no script, font or style from a CDN.

Each metrics cell carries ``data-model``, ``data-metric`` and the exact JSON value in ``data-value``, so a test (or
a person with devtools) can check the table against metrics/<model>.json.

Example::

    html = build_report(Path("."), provenance={"commit": "abc123", "base": "bundled:all-MiniLM-L6-v2"})
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from bgetune.lexical import describe_lexical

MODELS = ("base", "finetuned", "merged", "bm25")
COLUMNS = [("ndcg@10", "NDCG@10"), ("recall@1", "R@1"), ("recall@10", "R@10"), ("recall@100", "R@100"),
           ("mrr@10", "MRR@10"), ("map@10", "MAP@10"), ("hybrid_ndcg@10", "hybrid NDCG@10"),
           ("reranked_ndcg@10", "reranked NDCG@10"), ("pair_auc", "pair AUC")]
# Columns shown only when some model has them (the reranker is off by default).
OPTIONAL_COLUMNS = ("reranked_ndcg@10",)
GLOSSARY = [
    ("NDCG@10", "how high the relevant passages rank in the top 10, 1 = all of them first (log-discounted)"),
    ("Recall@k", "share of a query's relevant passages found in the top k"),
    ("MRR@k", "1 / rank of the first relevant passage (0 when it is not in the top k), averaged over queries"),
    ("MAP@10", "mean of the precision at each relevant passage's rank in the top 10"),
    ("hybrid", "the model's ranking fused with BM25's: by reciprocal ranks (RRF), or by a weighted sum of the two "
               "rankings' min-max normalised scores (convex; eval.hybrid.method)"),
    ("reranked", "the hybrid's top k (rerank.top_k) reordered by the cross-encoder of the rerank stage, blended with "
                 "the hybrid's scores at a weight chosen on val (rerank.weight)"),
    ("pair AUC", "chance a random relevant (query, passage) pair scores above a random unrelated one"),
    ("noise similarity", "how similar queries look to unrelated chit-chat (lower is better); 'as queries' asks the "
                         "chit-chat against the corpus"),
    ("general NDCG@10", "NDCG@10 on the out-of-domain set (eval.general): did fine-tuning keep general ability?"),
    ("95% interval", "paired bootstrap over the test queries: a difference whose interval excludes 0 is real"),
    ("BM25", "the lexical baseline, no training: BM25 over each Chinese character and adjacent pair, or over jieba's "
             "words (params lexical.tokens)"),
]
STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 90em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; font-size: 13px; vertical-align: top; }
td.text, th.text { text-align: left; max-width: 40em; } th { background: #f3f3f3; }
td.na { color: #aaa; text-align: center; } .verdict { font-size: 15px; padding: 0.5em 1em; background: #f6f8fa; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } figure { margin: 0; } img { max-width: 640px; }"""


def load_headline(root: Path) -> dict[str, dict]:
    return {name: _read(root / "metrics" / f"{name}.json") for name in MODELS
            if (root / "metrics" / f"{name}.json").exists()}


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _table(headers: list[str], rows: list[list], table_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(c if str(c).startswith("<t") else f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def reranker_advice(name: str, details: dict, significance: dict) -> str:
    """How to deploy a model's reranked ranking, and what the reranker adds over the ranking it reorders."""
    reranked = (details.get(f"eval_{name}") or {}).get("reranked") or {}
    weight, k = reranked.get("weight"), reranked.get("top_k")
    advice = (f"Then score each question's top {k} with models/reranker (a cross-encoder) and order them by "
              f"{weight} × its score + {1 - weight:.1f} × the {reranked.get('candidates')} score, each min-max "
              "normalised over the question's top k, as bgetune does (rerank).")
    gain = significance.get(f"{name}_reranked_vs_{name}_hybrid")
    if gain:
        advice += " The reranker adds " + difference_phrase(
            gain, "within the noise, so the hybrid alone serves as well at a fraction of the cost")
    return advice


def difference_phrase(comparison: dict, if_noise: str) -> str:
    """A bootstrap comparison as "+0.012 (95% interval [+0.004, +0.020])." and, when the interval holds 0,
    ": <if_noise>." instead of the full stop."""
    noise = comparison["ci_low"] <= 0 <= comparison["ci_high"]
    return (f"{comparison['difference']:+.3f} (95% interval [{comparison['ci_low']:+.3f}, "
            f"{comparison['ci_high']:+.3f}])" + (f": {if_noise}." if noise else "."))


def metrics_table(models: dict[str, dict]) -> str:
    columns = [(key, label) for key, label in COLUMNS
               if key not in OPTIONAL_COLUMNS or any(key in values for values in models.values())]
    rows = []
    for name, values in models.items():
        cells = [f"<th>{html.escape(name)}</th>"]
        for key, _ in columns:
            if key in values:
                cells.append(f'<td data-model="{html.escape(name)}" data-metric="{html.escape(key)}" '
                             f'data-value="{values[key]!r}">{_cell(values[key])}</td>')
            else:
                cells.append('<td class="na">–</td>')
        rows.append(cells)
    return _table(["model"] + [label for _, label in columns], rows, "metrics")


def significance_table(significance: dict) -> str:
    rows = []
    for name, r in significance.items():
        model, reference = name.split("_vs_")
        verdict = "better" if r["ci_low"] > 0 else "worse" if r["ci_high"] < 0 else "no clear difference"
        rows.append([f"<th>{html.escape(model)} − {html.escape(reference)}</th>",
                     f'<td data-comparison="{html.escape(name)}" data-value="{r["difference"]!r}">'
                     f'{r["difference"]:+.4f}</td>', f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]", verdict])
    return _table(["comparison", "NDCG@10 difference", "95% interval", "verdict"], rows, "significance")


# Below this many val questions the report warns that val's choices are noisy: a paired NDCG@10 difference's 95%
# interval there is wider than the differences val decides on (a few hundredths; on the shipped sample 21 val
# questions gave the term weights +0.027 on val and the 40 test questions −0.028).
FEW_VAL_QUESTIONS = 100


def verdicts(models: dict, significance: dict, details: dict) -> list[str]:
    """The sentences a reader needs first: did fine-tuning win over BM25 (and if not, why), what did merging cost
    and buy, which retriever to deploy, and whether val's choices rest on too few questions to trust."""
    from bgetune.modelcard import fusion_recipe

    lines = []
    tuned, bm25 = models.get("finetuned", {}), models.get("bm25", {})
    comparison = significance.get("finetuned_vs_bm25")
    if tuned and bm25 and comparison:
        if comparison["ci_low"] > 0:
            lines.append(f"The fine-tuned model beats BM25 on this test set: NDCG@10 {tuned['ndcg@10']:.3f} vs "
                         f"{bm25['ndcg@10']:.3f} ({comparison['difference']:+.3f}, 95% interval "
                         f"[{comparison['ci_low']:+.3f}, {comparison['ci_high']:+.3f}]).")
        else:
            vocab = details.get("vocab") or {}
            data = details.get("data") or {}
            queries = (data.get("corpus") or {}).get("existing_pairs_per_split", {}).get("train")
            started = (", started from their dictionary senses," if (vocab.get("init") or {}).get("rows_from_entry")
                       else "")
            why = (f"the base model could not read this language before training ({vocab.get('unk_rate_before', 0):.0%}"
                   f" of tokens were unknown, {vocab.get('tokens_added', 0)} tokens{started} had to be learned from "
                   f"{queries or 'few'} training queries)" if vocab.get("unk_rate_before", 0) > 0.2 else
                   "the test queries share many words with their passages, which is where lexical matching is "
                   "strongest, and the training set is small")
            state = "shows no clear difference from" if comparison["ci_high"] >= 0 else "is below"
            lines.append(f"The fine-tuned model {state} BM25 here (NDCG@10 {tuned['ndcg@10']:.3f} vs "
                         f"{bm25['ndcg@10']:.3f}) because {why}; a base model that already knows the language "
                         "(e.g. bge-base-zh-v1.5) or more training queries close the gap.")
    merge = details.get("merge") or {}
    merged = models.get("merged", {})
    if merged and tuned:
        cost = merged["ndcg@10"] - tuned["ndcg@10"]
        general = [(details.get(f"eval_{m}") or {}).get("general", {}).get("ood_ndcg@10") for m in
                   ("finetuned", "merged")]
        bought = (f"; on the general set {general[1]:.3f} vs {general[0]:.3f} ({general[1] - general[0]:+.3f})"
                  if None not in general else " (no general set given: eval.general measures what it buys)")
        lines.append(f"Merging (weights {merge.get('weights')}) changed in-domain NDCG@10 by {cost:+.3f}{bought}.")
    # On a tie the simpler retriever wins: a dense model, then BM25, then a fusion. A hybrid whose dense weight val
    # tuned to 0 is BM25's ranking, not a candidate of its own.
    candidates = {name: v["ndcg@10"] for name, v in models.items() if name not in ("base", "bm25")}
    if bm25:
        candidates["bm25"] = bm25["ndcg@10"]
    for name, v in models.items():
        weights = (details.get(f"eval_{name}") or {}).get("hybrid", {}).get("weights", [1.0, 1.0])
        if "hybrid_ndcg@10" in v and weights[0] > 0:
            candidates[f"{name} + BM25 (hybrid)"] = v["hybrid_ndcg@10"]
        reranked = (details.get(f"eval_{name}") or {}).get("reranked") or {}
        if "reranked_ndcg@10" in v and reranked.get("weight"):   # weight 0 keeps the hybrid's order
            fused = reranked.get("candidates") == "hybrid"
            candidates[f"{name}{' + BM25 (hybrid)' if fused else ''} + reranker"] = v["reranked_ndcg@10"]
    if candidates:
        best = max(candidates, key=candidates.get)
        advice = f"Deploy: {best} (NDCG@10 {candidates[best]:.3f})."
        if "(hybrid)" in best:
            hybrid = (details.get(f"eval_{best.split(' ')[0]}") or {}).get("hybrid", {})
            weights = hybrid.get("weights", [1.0, 1.0])
            advice += (f" Fuse the dense and BM25 rankings by {fusion_recipe({**hybrid, 'weights': weights})}, "
                       f"weights {weights} (dense, BM25), with {describe_lexical(hybrid.get('bm25'))}, as "
                       "bgetune does.")
            lead = significance.get(f"{best.split(' ')[0]}_hybrid_vs_bm25")
            if lead:
                advice += " Its lead over BM25 alone is " + difference_phrase(
                    lead, f"within the noise of {lead['queries']} test queries, so BM25 alone serves as well until "
                          "a larger test set says otherwise")
        if best.endswith("+ reranker"):
            advice += " " + reranker_advice(best.split(' ')[0], details, significance)
        windows = (details.get(f"eval_{best.split(' ')[0]}") or {}).get("windows")
        if windows and windows.get("window_vectors") and windows.get("weight"):
            weight = windows["weight"]
            advice += (f" Index each passage with its windows of whole sentences up to {windows['max_chars']} "
                       f"characters (overlap up to {windows['overlap_chars']}) and rank a passage by (1 − {weight}) "
                       f"× its own cosine + {weight} × its best vector's, as this evaluation did (eval.windows).")
        lines.append(advice)
    val_questions = questions_val_chose_on(details)
    if val_questions and val_questions < FEW_VAL_QUESTIONS:
        lines.append(f"The settings chosen on val (the hybrid's weights and BM25, the window weight, the merge) rest "
                     f"on {val_questions} val questions: so few that a choice val prefers can lose on test; more val "
                     "questions (split.val) make them steadier.")
    return lines


def questions_val_chose_on(details: dict) -> int | None:
    """How many val questions the evaluation's tunings ranked (the fine-tuned model's, else any model's)."""
    for name in ("finetuned", *MODELS):
        evaluation = details.get(f"eval_{name}") or {}
        for section in ("hybrid", "windows"):
            tuning = (evaluation.get(section) or {}).get("tuning") or {}
            if tuning.get("val_queries"):
                return tuning["val_queries"]
    return None


def worst_queries(per_query: list[dict], texts: dict[str, str], count: int = 10) -> str:
    ranked = sorted(per_query, key=lambda r: (r.get("ndcg@10", 0), r["qid"]))[:count]
    rows = []
    for r in ranked:
        positive = texts.get(r["pos_ids"][0], "")[:160] if r.get("pos_ids") else ""
        top = "<br>".join(f"{i + 1}. {html.escape(t['text'][:120])}" for i, t in enumerate(r.get("top3", [])))
        rows.append([f"<td class='text'>{html.escape(r['query'])}</td>", r.get("rank") or "> 100",
                     f"<td class='text'>{html.escape(positive)}</td>", f"<td class='text'>{top}</td>"])
    return _table(["query", "rank of its passage", "its passage", "what came back instead"], rows, "worst")


def term_weights_table(weighted: dict, plain: dict, choices: dict[str, dict] | None = None) -> str:
    """eval.term_weights at work: the weighted BM25 against the plain baseline, the terms it trusts least and
    most (results/eval/bm25.json's "term_weighted"), and ``choices``: per model, which BM25 its hybrid kept on val
    (results/eval/<model>.json's hybrid.tuning.bm25, with eval.term_weights.tune)."""
    learned = weighted["term_weights"]
    passage = weighted.get("passage", {})
    kept = "; ".join(f"{name}: {'weighted' if c['chosen'] == 'term_weighted' else 'plain'} (val hybrid NDCG@10 "
                     f"{c['term_weighted_val_ndcg@10']:.4f} weighted, {c['plain_val_ndcg@10']:.4f} plain)"
                     for name, c in (choices or {}).items())
    return key_value_table({
        "each hybrid's BM25, chosen on val": kept or None,
        "NDCG@10 (plain BM25 → weighted)": f"{plain.get('ndcg@10', 0):.4f} → {passage.get('ndcg@10', 0):.4f}",
        "Recall@10 (plain BM25 → weighted)": f"{plain.get('recall@10', 0):.4f} → {passage.get('recall@10', 0):.4f}",
        "learned from": f"{learned['train_questions']} train questions ({learned['method']}, smoothing "
                        f"{learned['smoothing']:g}): {learned['terms']} terms, {learned['terms_below_1']} below 1",
        "lowest weights": ", ".join(f"{t} {w:.2f}" for t, w in learned["lowest"]),
        "highest weights": ", ".join(f"{t} {w:.2f}" for t, w in learned["highest"]),
        "table": "results/eval/bm25_term_weights.json"})


def hybrid_bm25_choices(details: dict) -> dict[str, dict]:
    """Per model, the hybrid's val choice between plain and term-weighted BM25 (absent: val did not choose)."""
    choices = {}
    for name in MODELS:
        hybrid = (details.get(f"eval_{name}") or {}).get("hybrid") or {}
        if (hybrid.get("tuning") or {}).get("bm25"):
            choices[name] = hybrid["tuning"]["bm25"]
    return choices


def key_value_table(mapping: dict) -> str:
    rows = []
    for key, value in mapping.items():
        if value is None or value == {} or value == []:
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append(f"<tr><th class='text'>{html.escape(str(key))}</th><td class='text'>{html.escape(shown)}</td></tr>")
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>")


def build_report(root: Path, provenance: dict, significance: dict, per_query: list[dict] | None,
                 passage_texts: dict[str, str], extra_plots: dict[str, Path] | None = None) -> str:
    results = root / "results"
    models = load_headline(root)
    details = {name: _read(results / f"{name}.json") for name in ("data", "mining", "train", "merge", "vocab",
                                                                  "qa_gen")}
    details.update({f"eval_{name}": _read(results / "eval" / f"{name}.json") for name in MODELS})
    sections = [f"<h2>What produced this</h2>{key_value_table(provenance)}"]
    sections.append("<h2>Verdict</h2>" + "".join(f"<p class='verdict'>{html.escape(line)}</p>"
                                                 for line in verdicts(models, significance, details)))
    sections.append(f"<h2>Test-split metrics</h2>{metrics_table(models)}")
    if significance:
        sections.append("<h2>Is the difference real?</h2>" + significance_table(significance))
    if per_query:
        sections.append("<h2>The 10 worst test queries (fine-tuned model)</h2>" + worst_queries(per_query,
                                                                                          passage_texts))
    noise_rows = []
    for name in MODELS:
        noise = (details.get(f"eval_{name}") or {}).get("noise")
        if noise:
            noise_rows.append([f"<th>{name}</th>"] + [noise.get(k, "–") for k in (
                "noise_similarity_mean", "noise_over_positive_rate", "noise_query_top_mean",
                "noise_query_over_median_positive")])
    if noise_rows:
        sections.append("<h2>Unrelated text (noise guard, both ways)</h2>" + _table(
            ["model", "query ↔ chit-chat similarity", "queries whose positive loses to chit-chat",
             "chit-chat as a query: best passage similarity", "chit-chat queries above the median positive"],
            noise_rows, "noise"))
    weighted = (details.get("eval_bm25") or {}).get("term_weighted")
    if weighted:
        sections.append("<h2>BM25 with learned term weights (the hybrid's lexical half)</h2>"
                        + term_weights_table(weighted, (details.get("eval_bm25") or {}).get("passage", {}),
                                             hybrid_bm25_choices(details)))
    mining = details.get("mining")
    if mining:
        strategies = sorted(set(mining.get("negatives_per_strategy", {})) | set(mining.get("mean_score_per_strategy",
                                                                                            {})))
        rows = [[f"<th>{html.escape(s)}</th>", mining.get("negatives_per_strategy", {}).get(s, 0),
                 mining.get("mean_rank_per_strategy", {}).get(s, "–"),
                 mining.get("mean_score_per_strategy", {}).get(s, "–")] for s in strategies]
        sections.append("<h2>Mining</h2>" + _table(["strategy", "negatives", "mean rank", "mean similarity"], rows)
                        + key_value_table({"queries": mining.get("queries"),
                                           "queries without negatives": mining.get("queries_without_negatives"),
                                           "dropped (false-negative guard)": mining.get("drops"),
                                           "scored by": mining.get("scoring_model")}))
    data = details.get("data")
    if data:
        corpus, lengths = data.get("corpus", {}), data.get("lengths", {})
        rows = [[f"<th>{split}</th>", corpus.get("documents_per_split", {}).get(split, 0),
                 corpus.get("passages_per_split", {}).get(split, 0),
                 corpus.get("existing_pairs_per_split", {}).get(split, 0)] for split in ("train", "val", "test")]
        sections.append("<h2>Data</h2>" + _table(["split", "documents", "passages", "questions"], rows)
                        + key_value_table({"files read": data.get("ingest", {}).get("files"),
                                           "skipped": data.get("ingest", {}).get("skipped"),
                                           "encodings": data.get("ingest", {}).get("encodings"),
                                           "duplicates merged": corpus.get("duplicates"),
                                           "passages over the length limit": lengths.get("passages"),
                                           "queries over the length limit": lengths.get("queries")}))
    train = details.get("train")
    if train and train.get("stage1"):
        stage = train["stage1"]
        sections.append("<h2>Training</h2>" + key_value_table({
            "steps": stage.get("steps"), "loss (first → last logging window)": f"{stage.get('first_loss')} → "
                                                                               f"{stage.get('final_loss')}",
            "validation": {k: v for k, v in (stage.get("validation") or {}).items() if k != "history"},
            "device": train.get("runtime"), "seconds": train.get("seconds")}))
    plots = {p.name: p for p in (results / "plots").glob("*.png")}
    plots.update({name: path for name, path in (extra_plots or {}).items() if path.exists()})
    if plots:
        sections.append("<h2>Plots</h2><div class='plots'>" + "".join(_image(plots[n]) for n in sorted(plots))
                        + "</div>")
    sections.append("<h2>Terms</h2>" + _table(["term", "meaning"], [[f"<th class='text'>{t}</th>",
                                                                    f"<td class='text'>{html.escape(m)}</td>"]
                                                                   for t, m in GLOSSARY]))
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>bgetune report</title>"
            f"<style>{STYLE}</style></head><body><h1>bgetune report</h1>{''.join(sections)}</body></html>\n")
