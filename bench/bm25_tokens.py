"""Which BM25: jieba's words or CJK character bigrams, and at which k1 — alone and as the hybrid's lexical half.

The BM25 baseline and the hybrid's lexical half tokenised Chinese with jieba's search mode until 2026-12-03
(mining's BM25 still does: ``mining.bm25``). A segmenter cuts a domain term its own way (胃食管反流 in a question, 反流性食管炎
in the answer: only 食管 is shared), while Lucene's CJK analyzer indexes every character and every adjacent pair and
matches however either side is cut. This bench scores one trained model's test questions with BM25 under each
``lexical`` setting given, alone and fused with the model (the stage's convex hybrid, its dense weight chosen on val;
the dense side as the evaluate stage ranks by default: sentence windows, their weight chosen on val), with paired
bootstraps against the first setting (jieba's words at bm25s's k1 1.5, what the stored figures used):

    python bench/bm25_tokens.py --dataset meddialog --variant fast_distill_dict_init_bf16_batch32_remine_hardness
    python bench/bm25_tokens.py --dataset cmrc2018 --variant hardness_in_batch

``--three-way`` also fuses the model with the first two settings' BM25 at once (the same convex fusion over three
lists, its weights chosen on val on a 0.1 grid), paired against each two-list hybrid: the two tokenisations miss
different passages, so a hybrid might use both:

    python bench/bm25_tokens.py --dataset meddialog --variant dict_init_hardness \
        --settings words:1.5:0.75 cjk_bigrams:1.2:0.75 --three-way

A setting may end in ``:tr<smoothing>``: that BM25 with its query terms weighted as ``eval.term_weights: {method:
term_recall, smoothing: <smoothing>}`` weighs them (learned from the variant's train pairs by the evaluate stage's
code), e.g. the default BM25 plain and weighted:

    python bench/bm25_tokens.py --dataset meddialog --variant dict_init_hardness \
        --settings cjk_bigrams:1.2:0.75 cjk_bigrams:1.2:0.75:tr5

Each weighted setting whose plain setting is listed too also gets a row as ``eval.term_weights.tune`` runs it: the
hybrid's val tuning fuses the model with both and keeps the weights only when val ranks better with them (the
stage's own ``tune_lexical``), paired against the plain setting's hybrid.

Reads ``<workdir>/<dataset>/<variant>`` (bench/domain_runs.py's folder), writes bench/results/<dataset>_bm25_tokens.json
and .md (per-query NDCG@10 under bench/results/per_query/<dataset>_bm25_tokens/).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_SETTINGS = ("words:1.5:0.75", "words:1.2:0.75", "cjk_bigrams:1.5:0.75", "cjk_bigrams:1.2:0.75")


def parse_setting(text: str) -> dict:
    """``tokens:k1:b[:tr<smoothing>]`` (k1 and b optional: 1.2 and 0.75) as a ``lexical`` section, with
    ``term_recall``: the smoothing of learned query-term weights (eval.term_weights), or None."""
    tokens, k1, b, weights = (text.split(":") + ["", "", ""])[:4]
    if weights and not weights.startswith("tr"):
        raise SystemExit(f"--settings {text}: the fourth field is tr<smoothing> (term-recall weights), e.g. tr5")
    return {"tokens": tokens, "k1": float(k1 or 1.2), "b": float(b or 0.75),
            "term_recall": float(weights[2:] or 5.0) if weights else None}


def setting_name(lexical: dict) -> str:
    name = f"{lexical['tokens']}_k1_{lexical['k1']:g}_b_{lexical['b']:g}"
    return name + (f"_term_recall_{lexical['term_recall']:g}" if lexical.get("term_recall") is not None else "")


def setting_label(lexical: dict) -> str:
    label = f"{lexical['tokens']}, {lexical['k1']:g}, {lexical['b']:g}"
    return label + (f", term recall (smoothing {lexical['term_recall']:g})"
                    if lexical.get("term_recall") is not None else "")


def lexical_section(setting: dict):
    """The ``lexical`` params of a parsed setting (without its term weights)."""
    from bgetune.params import LexicalParams

    return LexicalParams(**{k: setting[k] for k in ("tokens", "k1", "b")})


def learned_weights(root: Path, params, setting: dict) -> dict | None:
    """The query-term weights the evaluate stage would learn for ``setting`` (None without ``term_recall``)."""
    from bgetune.evaluation.term_weights import learn_term_weights
    from bgetune.params import TermWeightParams

    if setting.get("term_recall") is None:
        return None
    lexical = lexical_section(setting)
    term_weights = TermWeightParams(method="term_recall", smoothing=setting["term_recall"])
    params = params.model_copy(update={"lexical": lexical,
                                       "eval": params.eval.model_copy(update={"term_weights": term_weights})})
    return learn_term_weights(root, params).weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    from domain_runs import (add_stored_model_args, git_commit, headline_and_per_query, interval, load_stored_model,
                             machine, stage_dense_side, stored_model_footer, write_stored_model_bench)

    add_stored_model_args(parser)
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS),
                        help="tokens:k1:b settings; the first is the reference (default: %(default)s)")
    parser.add_argument("--three-way", action="store_true",
                        help="also fuse the model with the first two settings' BM25 together (weights on val)")
    args = parser.parse_args()
    if args.three_way and len(args.settings) < 2:
        parser.error("--three-way needs two --settings (the two BM25s to fuse with the model)")

    from bgetune.evaluation.hybrid import FUSION_POOL, fuse_all, tune_weights
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.evaluation.significance import paired_bootstrap
    from bgetune.evaluation.testset import load_test_set

    started = time.perf_counter()
    parsed = [parse_setting(s) for s in args.settings]
    settings = [lexical_section(p) for p in parsed]
    root, params, device, precision, model, instruction = load_stored_model(args)
    batch = params.eval.encode_batch_size
    weights_of = [learned_weights(root, params, p) for p in parsed]
    splits = {name: [load_test_set(root, params.eval, FUSION_POOL, split=name, lexical=lexical, term_weights=weights)
                     for lexical, weights in zip(settings, weights_of)] for name in ("test", "val")}
    test, val = splits["test"][0], splits["val"][0]
    passage_vectors, windows, window_vectors, window_weight = stage_dense_side(root, params, device, precision, model,
                                                                               instruction, test, val)
    dense = {name: dense_rankings(model, split.texts, split.ids, split.queries, FUSION_POOL, instruction, batch, False,
                                  passage_vectors=passage_vectors, device=device, precision=precision,
                                  windows=windows, window_vectors=window_vectors, window_weight=window_weight)
             for name, split in (("test", test), ("val", val))}

    dense_metrics, dense_per_query = headline_and_per_query(dense["test"].ids, test.relevant)
    rows, per_query_of = [], {"dense": dense_per_query}
    for setting, lexical, test_set, val_set in zip(parsed, settings, splits["test"], splits["val"]):
        name = setting_name(setting)
        metrics, per_query_of[f"bm25_{name}"] = headline_and_per_query(test_set.bm25, test.relevant)
        weights, _ = tune_weights("convex", dense["val"].ids, val_set.bm25, val_set.relevant, 60,
                                  dense["val"].scores, val_set.bm25_scores)
        fused = fuse_all(dense["test"].ids, test_set.bm25, weights, 60, 10, "convex", dense["test"].scores,
                         test_set.bm25_scores)
        hybrid, per_query_of[f"hybrid_{name}"] = headline_and_per_query(fused, test.relevant)
        rows.append({"setting": name, "lexical": lexical.model_dump(), "term_recall": setting["term_recall"], **metrics,
                     "hybrid_dense_weight": weights[0], **{f"hybrid_{k}": v for k, v in hybrid.items()}})
    reference = rows[0]["setting"]
    for row in rows:
        name = row["setting"]
        row["bm25_vs_reference"] = paired_bootstrap(per_query_of[f"bm25_{reference}"], per_query_of[f"bm25_{name}"],
                                                    args.samples, args.seed)
        row["hybrid_vs_reference"] = paired_bootstrap(per_query_of[f"hybrid_{reference}"],
                                                      per_query_of[f"hybrid_{name}"], args.samples, args.seed)
        row["dense_vs_bm25"] = paired_bootstrap(per_query_of[f"bm25_{name}"], dense_per_query, args.samples,
                                                args.seed)
        row["hybrid_vs_bm25"] = paired_bootstrap(per_query_of[f"bm25_{name}"], per_query_of[f"hybrid_{name}"],
                                                 args.samples, args.seed)
    val_choices = []
    for plain, weighted in choice_pairs(parsed):
        choice = val_choice(dense, splits, test, val, plain, weighted, setting_name(parsed[weighted]))
        per_query_of[f"hybrid_{choice['setting']}"] = choice.pop("per_query")
        plain_name = setting_name(parsed[plain])
        choice["vs_plain_hybrid"] = paired_bootstrap(per_query_of[f"hybrid_{plain_name}"],
                                                     per_query_of[f"hybrid_{choice['setting']}"], args.samples,
                                                     args.seed)
        choice["label"] = f"{setting_label(parsed[weighted])} or plain"
        choice["plain_bm25_ndcg@10"] = rows[plain]["ndcg@10"]
        choice["plain_hybrid_ndcg@10"] = rows[plain]["hybrid_ndcg@10"]
        val_choices.append(choice)
    three_way = None
    if args.three_way:
        three_way = fuse_three(dense, splits, test, val, [rows[0]["setting"], rows[1]["setting"]])
        per_query_of["hybrid_three_way"] = three_way.pop("per_query")
        for row in rows[:2]:
            three_way[f"vs_hybrid_{row['setting']}"] = paired_bootstrap(
                per_query_of[f"hybrid_{row['setting']}"], per_query_of["hybrid_three_way"], args.samples, args.seed)
        three_way["vs_bm25_reference"] = paired_bootstrap(per_query_of[f"bm25_{reference}"],
                                                          per_query_of["hybrid_three_way"], args.samples, args.seed)
    stem = f"{args.dataset}_bm25_tokens"
    record = {"command": " ".join(["python", "bench/bm25_tokens.py"] + sys.argv[1:]),
              "commit": git_commit(), "machine": machine(), "device": device, "precision": precision,
              "date": time.strftime("%Y-%m-%d"), "dataset": args.dataset, "variant": args.variant,
              "model": args.model, "test_queries": len(test.pairs), "val_queries": len(val.pairs),
              "passages": len(test.ids), "windows": list(windows) if windows else None, "window_weight": window_weight,
              "dense": dense_metrics, "rows": rows, "val_choices": val_choices, "three_way": three_way,
              "seconds": round(time.perf_counter() - started, 1)}
    first_bm25 = rows[0]["ndcg@10"]
    lines = ["| BM25 (tokens, k1, b) | NDCG@10 | Recall@10 | MRR@10 | − the first [95% CI] | dense ÷ BM25 | "
             "hybrid NDCG@10 (dense weight) | hybrid − the first's [95% CI] | hybrid ÷ this BM25 | hybrid ÷ the first "
             "BM25 |", "| --- " * 10 + "|"]
    for r in rows:
        lines.append(f"| {setting_label({**r['lexical'], 'term_recall': r['term_recall']})} | {r['ndcg@10']:.4f} | "
                     f"{r['recall@10']:.4f} | "
                     f"{r['mrr@10']:.4f} | {interval(r['bm25_vs_reference']) if r is not rows[0] else '–'} | "
                     f"{dense_metrics['ndcg@10'] / r['ndcg@10']:.3f}× | {r['hybrid_ndcg@10']:.4f} "
                     f"({r['hybrid_dense_weight']:.1f}) | "
                     f"{interval(r['hybrid_vs_reference']) if r is not rows[0] else '–'} | "
                     f"{r['hybrid_ndcg@10'] / r['ndcg@10']:.3f}× | {r['hybrid_ndcg@10'] / first_bm25:.3f}× |")
    if val_choices:
        lines += ["", "| hybrid, its BM25 chosen on val (eval.term_weights.tune) | val hybrid NDCG@10 plain / "
                  "weighted | chosen | test hybrid NDCG@10 (dense weight) | Recall@10 | − the plain hybrid [95% CI] | "
                  "÷ plain BM25 |", "| --- " * 7 + "|"]
        for c in val_choices:
            lines.append(f"| {c['label']} | {c['plain_val_ndcg@10']:.4f} / {c['term_weighted_val_ndcg@10']:.4f} | "
                         f"{c['chosen']} | {c['ndcg@10']:.4f} ({c['dense_weight']:.1f}) | {c['recall@10']:.4f} | "
                         f"{interval(c['vs_plain_hybrid'])} | {c['ndcg@10'] / c['plain_bm25_ndcg@10']:.3f}× |")
    if three_way:
        w = three_way["weights"]
        lines += ["", "| three lists (dense, the first BM25, the second BM25) | weights (val) | hybrid NDCG@10 | "
                  "Recall@10 | MRR@10 | − the first's hybrid [95% CI] | − the second's hybrid [95% CI] | ÷ the first BM25 |",
                  "| --- " * 8 + "|",
                  f"| convex fusion of three | {w[0]:.1f} / {w[1]:.1f} / {w[2]:.1f} | {three_way['ndcg@10']:.4f} | "
                  f"{three_way['recall@10']:.4f} | {three_way['mrr@10']:.4f} | "
                  f"{interval(three_way['vs_hybrid_' + rows[0]['setting']])} | "
                  f"{interval(three_way['vs_hybrid_' + rows[1]['setting']])} | "
                  f"{three_way['ndcg@10'] / first_bm25:.3f}× |"]
    window_text = (f"windows {windows[0]}:{windows[1]} at weight {window_weight:.1f} (val)" if windows
                   else "one vector per passage")
    lines += ["", stored_model_footer(args, test, val, f"; dense NDCG@10 {dense_metrics['ndcg@10']:.4f} "
                                                        f"({window_text}); {device}, {precision}", record)]
    write_stored_model_bench(Path(args.out), stem, record, lines, per_query_of, test.pairs)


def choice_pairs(parsed: list[dict]) -> list[tuple[int, int]]:
    """(plain, weighted) indices of ``parsed``: each setting with term weights and the same BM25 without them."""
    plain_of = {setting_name({**p, "term_recall": None}): i for i, p in enumerate(parsed) if p["term_recall"] is None}
    return [(plain_of[setting_name({**p, "term_recall": None})], i) for i, p in enumerate(parsed)
            if p["term_recall"] is not None and setting_name({**p, "term_recall": None}) in plain_of]


def val_choice(dense: dict, splits: dict, test, val, plain: int, weighted: int, weighted_name: str) -> dict:
    """The convex hybrid as ``eval.term_weights.tune`` builds it: val fuses the model with the plain and the
    weighted BM25 (``splits[...][plain]`` and ``[weighted]``), each with its own dense weight, and keeps the better
    (ties: plain); test is fused with that BM25 at that weight."""
    from domain_runs import headline_and_per_query

    from bgetune.evaluation.hybrid import fuse_all, tune_lexical

    candidates = {"plain": plain, "term_weighted": weighted}
    chosen, options = tune_lexical("convex", dense["val"].ids, dense["val"].scores,
                                   {name: (splits["val"][i].bm25, splits["val"][i].bm25_scores)
                                    for name, i in candidates.items()}, val.relevant)
    weights, lexical = options[chosen]["weights"], splits["test"][candidates[chosen]]
    fused = fuse_all(dense["test"].ids, lexical.bm25, weights, 60, 10, "convex", dense["test"].scores,
                     lexical.bm25_scores)
    metrics, per_query = headline_and_per_query(fused, test.relevant)
    return {"setting": f"{weighted_name}_or_plain_on_val", "chosen": chosen, "dense_weight": weights[0],
            **{f"{name}_val_ndcg@10": round(option["val_ndcg@10"], 6) for name, option in options.items()},
            **metrics, "per_query": per_query}


def three_way_grid(step: float = 0.1) -> list[list[float]]:
    """Every [dense, first BM25, second BM25] weight triple on a ``step`` grid that sums to 1, dense first."""
    n = round(1 / step)
    return [[round(i * step, 6), round(j * step, 6), round((n - i - j) * step, 6)]
            for i in range(n + 1) for j in range(n + 1 - i)]


def fuse_three(dense: dict, splits: dict, test, val, names: list[str]) -> dict:
    """The model fused with two BM25 rankings at once (convex, each list's top FUSION_POOL min-max normalised), the
    weights that maximise val NDCG@10 (ties: the earlier triple, i.e. the smaller dense weight), scored on test."""
    from domain_runs import headline_and_per_query

    from bgetune.evaluation.hybrid import FUSION_POOL, convex_fusion
    from bgetune.evaluation.metrics import ranking_metrics

    n = FUSION_POOL

    def fuse(split: str, weights: list[float]) -> list[list[str]]:
        d, first, second = dense[split], splits[split][0], splits[split][1]
        return [convex_fusion([di[:n], ai[:n], bi[:n]], [ds[:n], as_[:n], bs[:n]], weights, 10)
                for di, ds, ai, as_, bi, bs in zip(d.ids, d.scores, first.bm25, first.bm25_scores, second.bm25,
                                                   second.bm25_scores)]

    trials = [{"weights": w, "val_ndcg@10": ranking_metrics(fuse("val", w), val.relevant, [10])["ndcg@10"]}
              for w in three_way_grid()]
    best = max(trials, key=lambda t: t["val_ndcg@10"])   # max keeps the first of equals
    metrics, per_query = headline_and_per_query(fuse("test", best["weights"]), test.relevant)
    return {"lexical": names, "weights": best["weights"], "val_ndcg@10": best["val_ndcg@10"], **metrics,
            "per_query": per_query, "trials": trials}


if __name__ == "__main__":
    main()
