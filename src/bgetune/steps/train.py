"""train: data/train.jsonl → models/finetuned, a sentence-transformers folder (safetensors) with its model card;
results/train.json (steps, losses, val curve, device, precision) and results/train_log/ (DVCLive curves).

Training runs on sentence-transformers' Trainer (``bgetune.training.trainer.fit``): on the GPU when there is one,
in bf16/fp16 there, on every GPU of ``train.devices`` (this stage launches torchrun itself). In order:

1. round 1 on the mined negatives;
2. with ``mining.rounds: 2``, negatives re-mined with the round-1 model, then a second round (ANCE-style);
3. with ``train.stage2.enabled``, a second stage on data/stage2/*.jsonl with its own loss, lr and selection.

Each part checkpoints into models/checkpoints/train/<part>/ and is skipped when a re-run finds it finished, so a
run killed anywhere resumes and ends with the weights of an uninterrupted run.

Reads params: seed, train (train.seed: data order and initialisation), model, mining (re-mined in round 2).

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import read_json, read_pairs, read_passages, read_train_examples, write_json

log = logging.getLogger("bgetune")
OUTS = ["models/finetuned", "results/train.json", "results/train_log"]
CHECKPOINTS = "models/checkpoints/train"


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    import torch

    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.lineage import check_examples_in_corpus
    from bgetune.models import freeze_embeddings, instructions, load_model, save_model
    from bgetune.training.data import world_size

    root = Path(root)
    started = time.perf_counter()
    if params.train.backend == "flagembedding":
        from bgetune.training.flagembedding import run_flagembedding

        return run_flagembedding(params, root)
    processes = world_size()
    device = resolve_device(params.model.device)
    precision = resolve_precision(params.train.precision, device)
    passages = read_passages(root / "data/corpus.jsonl")
    examples = read_train_examples(root / "data/train.jsonl")
    check_examples_in_corpus(examples, passages, root / "data/train.jsonl", root / "data/corpus.jsonl")
    train_instruction, eval_instruction = instructions(params.model, params.model.base)
    seed = params.seed_of("train")
    torch.manual_seed(seed)
    model = load_model(str(root / "models/base"), device, params.model.query_max_length,
                       params.model.passage_max_length, key="models/base")
    tokens_added = len(model.tokenizer) - (read_json(root / "results/vocab.json").get("vocab_size_before")
                                           or len(model.tokenizer))
    if params.train.freeze_embeddings:
        freeze_embeddings(model)
    lora = None
    if params.train.method == "lora":
        from bgetune.training.lora import add_lora

        lora = add_lora(model, params.train.lora, len(model.tokenizer) - tokens_added, seed)
        log.info("LoRA r=%d, alpha=%g on %s: %s of %s parameters trainable (%.2f%%), %d new token rows among them",
                 params.train.lora.r, params.train.lora.alpha, ", ".join(params.train.lora.target_modules),
                 f"{lora['trainable_parameters']:,}", f"{lora['total_parameters']:,}",
                 100 * lora["trainable_parameters"] / lora["total_parameters"], lora["new_token_rows"])
    evaluator = validation_evaluator(params, root, passages, eval_instruction)
    noise = noise_texts(params.train.noise_texts, root) if params.train.noise_weight > 0 else []
    stage2_files = sorted((root / params.train.stage2.folder).glob("*.jsonl")) if params.train.stage2.enabled else []
    fingerprint = fingerprint_of(params, root, stage2_files)
    train_params, distillation = resolved_distillation(params)
    if lora is not None:
        from bgetune.training.lora import adapter_lr

        # The adapters' rate stands in for train.lr in every part that trains them (stage 2 keeps its own lr).
        lr, source = adapter_lr(params.train)
        train_params = train_params.model_copy(update={"lr": lr})
        lora["lr"] = lr
        log.info("LoRA: the adapters train at lr %g (%s)%s", lr, source,
                 f", the new token rows at {params.train.embedding_lr:g} (train.embedding_lr)"
                 if params.train.embedding_lr and lora["new_token_rows"] else "")
    common = dict(seed=seed, instruction=train_instruction, device=device, precision=precision,
                  evaluator=evaluator, progress=progress, processes=processes)
    checkpoints = root / CHECKPOINTS
    parts: list[tuple[str, dict]] = []

    summary = run_part(model, "stage1", examples, train_params, fingerprint, checkpoints, noise=noise,
                       groups=batch_groups(train_params, examples, passages), **common)
    parts.append(("stage1", summary))
    rounds = {}
    if params.mining.rounds == 2:
        second, rounds = remine(params, root, model, passages, eval_instruction, device, precision, progress)
        parts.append(("round2", run_part(model, "round2", second, train_params, fingerprint, checkpoints,
                                         noise=noise, groups=batch_groups(train_params, second, passages), **common)))
    if stage2_files:
        stage2 = params.train.stage2
        stage2_examples = [e for path in stage2_files for e in read_train_examples(path)]
        view = train_params.model_copy(update={
            "epochs": stage2.epochs, "max_steps": stage2.max_steps, "lr": stage2.lr, "loss": stage2.loss,
            "noise_weight": stage2.noise_weight, "noise_margin": stage2.noise_margin, "select_by": stage2.select_by,
            "embedding_lr": 0.0})
        if stage2.freeze_embeddings:
            freeze_embeddings(model)
        stage2_noise = noise_texts(params.train.noise_texts, root) if stage2.noise_weight > 0 else []
        part = run_part(model, "stage2", stage2_examples, view, fingerprint, checkpoints, noise=stage2_noise,
                        groups=batch_groups(view, stage2_examples, passages), **{**common, "seed": seed + 1})
        part["files"] = [str(p.relative_to(root)) for p in stage2_files]
        parts.append(("stage2", part))

    if processes > 1 and not _is_main():
        return dict(parts)
    result = {name: part for name, part in parts}
    result.update({"method": params.train.method, "loss": params.train.loss, "temperature": params.train.temperature,
                   "train_instruction": train_instruction, "eval_instruction": eval_instruction,
                   "rounds": rounds, "distillation": distillation, "runtime": runtime(device, precision, processes),
                   "seconds": round(time.perf_counter() - started, 2)})
    if lora is not None:
        result["lora"] = lora
    from bgetune.modelcard import card_facts

    facts = card_facts(params, model, passages, examples, tokens_added, eval_instruction, device, precision)
    with StageOutputs("train", OUTS, root) as out:
        folder = out.path("models/finetuned")
        if lora is not None:
            from bgetune.training.lora import merge_lora

            result["lora"].update(merge_lora(model, out.staging / "lora_adapter"))
        from bgetune.modelcard import finetuned_card

        save_model(model, folder, eval_instruction, finetuned_card(params, result, facts))
        if lora is not None:
            (out.staging / "lora_adapter").rename(folder / "lora_adapter")
        write_json(out.path("results/train.json"), result)
        from bgetune.training.curves import write_curves

        write_curves(out.path("results/train_log"), parts)
    from bgetune.training.checkpoints import clear_checkpoints

    clear_checkpoints(checkpoints)
    first = result["stage1"]
    log.info("train: %d steps, loss %s → %s (mean per %d-step window), %s, %s on %s, %.0f s", first["steps"],
             first["first_loss"], first["final_loss"], first["loss_window_steps"], first["optimizer"], precision,
             device, result["seconds"])
    return result


def batch_groups(train_params, examples, passages) -> list[str] | None:
    """``train.batch_by: domain``: each example's domain (its positive passage's); None for ``none``."""
    if train_params.batch_by != "domain":
        return None
    from bgetune.training.data import domain_groups

    return domain_groups(examples, {p.id: p.domain for p in passages})


def run_part(model, name: str, examples, train_params, fingerprint: str, checkpoints: Path, **options) -> dict:
    """One training part, resumable: skipped (weights reloaded) when a re-run finds it finished."""
    from safetensors.torch import load_model as load_weights
    from safetensors.torch import save_model as save_weights

    from bgetune.training.trainer import fit

    directory = checkpoints / name
    done = directory / "done"
    part_fingerprint = hashlib.sha256(f"{fingerprint}:{name}".encode()).hexdigest()
    marker = done / "summary.json"
    if marker.exists():
        try:
            saved = json.loads(marker.read_text())
        except ValueError:
            saved = {}
        if saved.get("fingerprint") == part_fingerprint:
            load_weights(model, str(done / "weights.safetensors"))
            log.info("train %s: already finished in an earlier run (%s)", name, done)
            return saved["summary"]
    summary = fit(model, examples, train_params, checkpoint_dir=directory / "trainer", fingerprint=part_fingerprint,
                  stage=name, noise_texts=options.pop("noise"), **options)
    if _is_main():
        tmp = directory / "done.tmp"
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_weights(model, str(tmp / "weights.safetensors"))
        (tmp / "summary.json").write_text(json.dumps({"fingerprint": part_fingerprint, "summary": summary}))
        shutil.rmtree(done, ignore_errors=True)
        tmp.rename(done)
        shutil.rmtree(directory / "trainer", ignore_errors=True)
    return summary


def remine(params, root: Path, model, passages, instruction: str, device: str, precision: str, progress: bool):
    """Round 2: negatives mined again with the round-1 model (harder ones than the base could find)."""
    from bgetune.negatives.mine import mine

    pairs = read_pairs(root / "data/pairs/train.jsonl")
    model.eval()
    examples, report = mine(passages, pairs, model, params.mining, params.seed_of("train") + 2, instruction, progress,
                            device, precision)
    if params.mining.teacher:
        # Round 2 distils from the same kind of teacher as round 1: a teacher model scores the new groups, and the
        # hybrid / bm25 teachers read the round-1 model's cosines (a better dense half than the base's).
        from bgetune.negatives.teacher import teacher_scores

        report["teacher"] = teacher_scores(examples, passages, params.mining, params.model, device, precision,
                                           scorer_model=model, scorer_instruction=instruction, progress=progress)
    model.train()
    log.info("round 2: re-mined negatives with the round-1 model: %s", report["negatives_per_strategy"])
    return examples, {"round2_mining": {k: report[k] for k in ("negatives_per_strategy", "drops",
                                                               "queries_without_negatives", "mean_score_per_strategy",
                                                               "teacher")
                                        if k in report}}


def validation_evaluator(params, root: Path, passages, instruction: str):
    """Val NDCG@10 (and the noise metric when selecting by it) over val positives + a seeded corpus sample."""
    if not params.train.eval_every:
        return None
    from sentence_transformers.base.evaluation import SequentialEvaluator

    from bgetune.training.evaluators import NoiseEvaluator, val_retrieval_evaluator

    from bgetune.evaluation.testset import val_pool

    val_pairs, pool = val_pool(root, passages, params.train.eval_max_passages, params.seed, "train.eval_every")
    evaluators = [val_retrieval_evaluator(pool, val_pairs, instruction)]
    selects = {params.train.select_by, params.train.stage2.select_by if params.train.stage2.enabled else None}
    if "noise_similarity" in selects:
        evaluators.append(NoiseEvaluator([p.query for p in val_pairs], noise_texts(params.train.noise_texts, root),
                                         instruction))
    return SequentialEvaluator(evaluators) if len(evaluators) > 1 else evaluators[0]


def noise_texts(path: str, root: Path) -> list[str]:
    from bgetune.evaluation.noise import load_noise_texts

    return load_noise_texts(str(root / path) if path else "")


def resolved_distillation(params) -> tuple:
    """The train section with ``distill_temperature`` a number (``auto`` resolved for ``mining.teacher``), and what
    train.json says of the distillation (None without it). The teacher's kind is asked only when it is used."""
    from bgetune.negatives.teacher import distill_temperature

    train = params.train
    if train.distill_weight == 0:
        return train, None
    temperature, why = distill_temperature(train, params.mining.teacher)
    teacher = params.mining.teacher or "the scoring model"
    log.info("distillation from %s at weight %g, teacher temperature %g (%s)", teacher, train.distill_weight,
             temperature, why)
    return (train.model_copy(update={"distill_temperature": temperature}),
            {"teacher": teacher, "weight": train.distill_weight, "temperature": temperature, "why": why})


def fingerprint_of(params, root: Path, extra_files: list[Path]) -> str:
    """Params and input files a checkpoint depends on: a checkpoint from other ones is never resumed."""
    from bgetune.training.checkpoints import digest_files

    digest = hashlib.sha256()
    digest.update(json.dumps({"seed": params.seed_of("train"), "train": params.train.model_dump(),
                              "model": params.model.model_dump(),
                              "mining": params.mining.model_dump() if params.mining.rounds > 1 else None},
                             sort_keys=True, default=str).encode())
    files = [root / "data/train.jsonl", root / "data/corpus.jsonl", root / "data/pairs/val.jsonl",
             *sorted((root / "models/base").rglob("*")), *extra_files]
    digest_files(digest, root, files)
    return digest.hexdigest()


def _is_main() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
