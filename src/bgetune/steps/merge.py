"""merge: LM-Cocktail-style weighted average of the base, the fine-tuned model and any ``merge.models`` →
models/merged, saved through the base model object (its pooling and normalisation kept), with its card;
results/merge.json (weights and how they were chosen), results/layer_changes.json and a plot of which layers
fine-tuning moved.

``merge.base`` chooses the base mixed in: ``expanded`` (models/base, the vocabulary-expanded base training started
from) or ``original`` (model.base as shipped: new-token rows then come from the fine-tuned model alone).
``merge.search``: ``off`` (``merge.weights``), ``grid`` (the fine-tuned weight that keeps ``merge.keep_in_domain``
of its val NDCG@10 and the most general ability) or ``examples`` (LM-Cocktail's weights from each model's loss on a
few val examples).

Reads params: seed, merge, model.*, eval.general, eval.encode_batch_size, train.temperature.

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import read_passages, write_json

log = logging.getLogger("bgetune")
OUTS = ["models/merged", "results/merge.json", "results/layer_changes.json", "results/plots/layer_changes.png"]


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    import torch

    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.merging import layer_changes, merge_models
    from bgetune.models import instructions, load_model, save_model
    from bgetune.plots import bar_chart

    root = Path(root)
    started = time.perf_counter()
    device = resolve_device(params.model.device)
    precision = resolve_precision(params.model.precision, device)
    lengths = (params.model.query_max_length, params.model.passage_max_length)
    _, instruction = instructions(params.model, params.model.base)
    base = load_model(str(root / "models/base"), device, *lengths, key="models/base")
    finetuned = load_model(str(root / "models/finetuned"), device, *lengths, key="models/finetuned")
    extras = [load_model(m.path, device, *lengths, key=f"merge.models[{i}].path")
              for i, m in enumerate(params.merge.models)]
    base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
    if params.merge.base == "original":
        original = load_model(params.model.base, device, *lengths, params.model.pooling,
                              params.model.trust_remote_code)
        base_state = {k: v.detach().clone() for k, v in original.state_dict().items()}
        del original
    tuned_state = finetuned.state_dict()
    changes = layer_changes(base_state, tuned_state)
    summary: dict = {"base": params.merge.base, "layer_changes": {c["layer"]: c["relative_change"] for c in changes}}
    names = ["base", "finetuned"] + [m.path for m in params.merge.models]
    weights = list(params.merge.weights) + [m.weight for m in params.merge.models]
    if params.merge.search == "grid":
        weights[0], weights[1] = grid_weights(params, root, base, base_state, tuned_state, instruction, device,
                                              precision, summary, progress)
        weights = weights[:2] + [m.weight for m in params.merge.models]
    elif params.merge.search == "examples":
        weights = examples_weights(params, root, [base_state, tuned_state] + [m.state_dict() for m in extras],
                                   base, instruction, device, summary)
    with torch.no_grad():
        merged = merge_models(base, [finetuned] + extras, weights, base_state=base_state)
    summary["weights"] = dict(zip(names, [round(w / sum(weights), 6) for w in weights]))
    summary.update({"search": summary.get("search", params.merge.search), "runtime": runtime(device, precision),
                    "seconds": round(time.perf_counter() - started, 2)})
    from bgetune.modelcard import card_facts, finetuned_card

    passages = read_passages(root / "data/corpus.jsonl")
    facts = card_facts(params, merged, passages, [], 0, instruction, device, precision)
    facts.update({"title": "Merged embedding model", "path": "models/merged",
                  "description": "Weighted average of " + ", ".join(f"{n} ({w:.2f})" for n, w in
                                                                     summary["weights"].items()) + " (LM-Cocktail)."})
    with StageOutputs("merge", OUTS, root) as out:
        save_model(merged, out.path("models/merged"), instruction, finetuned_card(params, {}, facts))
        write_json(out.path("results/merge.json"), summary)
        write_json(out.path("results/layer_changes.json"), changes)
        bar_chart([c["layer"] for c in changes], [c["relative_change"] for c in changes],
                  out.path("results/plots/layer_changes.png"),
                  "Relative weight change per layer, fine-tuned vs base", "‖Δθ‖ / ‖θ_base‖")
    log.info("merge: weights %s; most changed layer %s", summary["weights"],
             max(changes, key=lambda c: c["relative_change"])["layer"] if changes else None)
    return summary


def grid_weights(params, root, model, base_state, tuned_state, instruction, device, precision, summary,
                 progress: bool = True):
    """[base, fine-tuned] weights from the grid search (val NDCG@10, general NDCG@10)."""
    from bgetune.evaluation.general import general_metrics, load_general_set
    from bgetune.evaluation.metrics import ranking_metrics
    from bgetune.evaluation.retrieval import dense_rankings
    from bgetune.merging import choose_grid_weight, search_merge_weights
    from bgetune.evaluation.testset import val_pool

    passages = read_passages(root / "data/corpus.jsonl")
    val_pairs, pool = val_pool(root, passages, params.merge.search_max_passages, params.seed, "merge.search")
    general = load_general_set(params.eval.general, params.seed)

    def evaluate(candidate) -> dict:
        ranked = dense_rankings(candidate, [p.text for p in pool], [p.id for p in pool], [p.query for p in val_pairs],
                                10, instruction, params.eval.encode_batch_size, False, device=device,
                                precision=precision)
        result = {"val_ndcg@10": ranking_metrics(ranked.ids, [set(p.pos_ids) for p in val_pairs], [10])["ndcg@10"]}
        if general is not None:
            # the general set may be thousands of passages per trial: show the encoding's progress
            result["ood_ndcg@10"] = general_metrics(candidate, instruction, general, [10],
                                                    params.eval.encode_batch_size, progress, device,
                                                    precision)["ood_ndcg@10"]
        return result

    if any(base_state[k].shape != v.shape for k, v in tuned_state.items()):
        base_state = _padded(base_state, tuned_state)
    grid = sorted(set(params.merge.grid) | {0.0, 1.0})
    trials = search_merge_weights(model, base_state, tuned_state, grid, evaluate)
    base_ood = next((t.get("ood_ndcg@10") for t in trials if t["finetuned_weight"] == 0.0), None)
    chosen, reason = choose_grid_weight(trials, params.merge.keep_in_domain, base_ood, params.merge.ood_tolerance)
    summary["search"] = {"mode": "grid", "trials": trials, "chosen_finetuned_weight": chosen["finetuned_weight"],
                         "reason": reason, "val_queries": len(val_pairs), "val_passages": len(pool),
                         "general_set": general.source if general is not None else None}
    log.info("merge search: fine-tuned weight %.2f (%s)", chosen["finetuned_weight"], reason)
    return 1.0 - chosen["finetuned_weight"], chosen["finetuned_weight"]


def _padded(base_state: dict, tuned_state: dict) -> dict:
    """The original base with the fine-tuned model's extra vocabulary rows (for grid trials: rows it lacks)."""
    padded = {}
    for key, value in base_state.items():
        tuned = tuned_state[key]
        if value.dim() and value.shape[0] < tuned.shape[0]:
            import torch

            value = torch.cat([value, tuned[value.shape[0]:].to(value.dtype)], dim=0)
        padded[key] = value
    return padded


def examples_weights(params, root, states, model, instruction, device, summary) -> list[float]:
    """LM-Cocktail's merge with data: each model's InfoNCE loss on ``merge.examples`` val queries (their positive
    and the other examples' positives as negatives), weights = softmax(−loss / merge.example_temperature)."""
    import random

    import torch

    from bgetune.merging import example_weights
    from bgetune.records import read_pairs

    passages = {p.id: p.text for p in read_passages(root / "data/corpus.jsonl")}
    pairs = [p for p in read_pairs(root / "data/pairs/val.jsonl") if p.pos_ids]
    if not pairs:
        from bgetune.records import InputError

        raise InputError(f"{root / 'data/pairs/val.jsonl'}: merge.search: examples needs val pairs (split.val > 0)")
    sample = random.Random(params.seed).sample(pairs, min(params.merge.examples, len(pairs)))
    queries = [p.query for p in sample]
    positives = [passages[p.pos_ids[0]] for p in sample]
    losses = []
    full = {k: v.shape for k, v in states[1].items()}
    for state in states:
        if any(state[k].shape != full[k] for k in state):
            state = _padded(state, states[1])
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            q = torch.nn.functional.normalize(
                model.encode_query(queries, prompt=instruction, convert_to_tensor=True).float(), dim=-1)
            c = torch.nn.functional.normalize(
                model.encode_document(positives, prompt="", convert_to_tensor=True).float(), dim=-1)
            scores = q @ c.T / params.train.temperature   # the training loss, in-batch negatives only
            losses.append(float(torch.nn.functional.cross_entropy(scores, torch.arange(len(sample),
                                                                                         device=scores.device))))
    weights = example_weights(losses, params.merge.example_temperature)
    summary["search"] = {"mode": "examples", "examples": len(sample), "losses": [round(x, 5) for x in losses],
                         "temperature": params.merge.example_temperature}
    log.info("merge with examples: losses %s → weights %s", [round(x, 4) for x in losses],
             [round(w, 3) for w in weights])
    return weights
