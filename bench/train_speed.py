"""Training throughput on whatever device is here: bgetune (sentence-transformers' Trainer with bgetune's collator
and id-masked InfoNCE) against a plain SentenceTransformerTrainer with MultipleNegativesRankingLoss and against
FlagEmbedding's own trainer, at the same settings, on BGE-shaped models with random weights built from a config
(vocabulary 21,128, CLS pooling); plus encoding throughput and faiss search on the GPU vs the CPU.

    python bench/train_speed.py                   # GPU: small, base, large in bf16 at query 64 / passage 512,
                                                  #      batch 32, group 8; CPU: the small shape, smaller batches
    python bench/train_speed.py --shapes small --engines bgetune sentence_transformers --repeats 5

Every (engine, shape, repeat) runs in its own process (peak memory is its own); repeats alternate the engine
order so a slow moment of a shared machine does not land on one engine only. A step's time is taken from one
`on_step_end` to the next (after a CUDA synchronise), after ``--warmup`` steps. Texts per second count queries,
positives and negatives; MFU (GPU) = (6·N + 12·L·s·h FLOPs per real token) / (time × the GPU's peak bf16 FLOPs).
Results: bench/results/train_speed_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"small": (512, 4, 8, 2048), "base": (768, 12, 12, 3072), "large": (1024, 24, 16, 4096)}
VOCAB = 21128
ENGINES = ("bgetune", "sentence_transformers", "flagembedding")
# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s.
PEAKS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0, "4090": 165.2,
         "3090": 71.0, "V100": 125.0, "T4": 65.0}


def build_model(shape: str, folder: Path) -> Path:
    """A BERT of the shape with random weights and a 21,128-token character vocabulary, as a sentence-transformers
    folder with CLS pooling (bge-*-zh's layout)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    if (folder / "modules.json").exists():
        return folder
    hidden, layers, heads, intermediate = SHAPES[shape]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + [chr(0x4E00 + i) for i in range(VOCAB - len(specials))])}
    raw = folder.with_name(folder.name + "-raw")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=intermediate, max_position_embeddings=512)).save_pretrained(raw)
    BertTokenizerFast(vocab=vocab, do_lower_case=False).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=512)
    SentenceTransformer(modules=[transformer, Pooling(hidden, pooling_mode="cls"), Normalize()],
                        device="cpu").save(str(folder))
    return folder


def synthetic_examples(count: int, group: int, query_length: int, passage_length: int, seed: int):
    """Queries and passages of random CJK characters (one token each), passages 70–100% of the passage length."""
    from bgetune.records import TrainExample

    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return "".join(chr(0x4E00 + rng.randrange(VOCAB - 5)) for _ in range(rng.randint(low, high)))

    q_hi, p_hi = query_length - 2, passage_length - 2
    examples = []
    for i in range(count):
        negatives = [text(int(0.7 * p_hi), p_hi) for _ in range(group - 1)]
        examples.append(TrainExample(query=text(q_hi // 3, q_hi), pos=[text(int(0.7 * p_hi), p_hi)], pos_ids=[f"p{i}"],
                                     neg=negatives, neg_ids=[f"n{i}_{j}" for j in range(group - 1)], qid=f"q{i}"))
    return examples


class StepTimer:
    def __init__(self, device: str):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if not timer.marks:
                    timer.mark()

            def on_step_end(self, args, state, control, **kwargs):
                timer.mark()

        self.device, self.marks, self.callback = device, [], Callback()

    def mark(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())

    def step_seconds(self, warmup: int) -> list[float]:
        gaps = [b - a for a, b in zip(self.marks, self.marks[1:])]
        return gaps[warmup:]


def worker(engine: str, shape: str, args) -> dict:
    import torch

    from bgetune.device import resolve_device, resolve_precision, trainer_precision_args

    torch.manual_seed(0)
    device = resolve_device("auto")
    precision = resolve_precision(args.precision, device)
    folder = build_model(shape, Path(args.work) / f"bge-{shape}")
    steps = args.steps + args.warmup
    examples = synthetic_examples(args.batch_size * steps, args.group_size, args.query_length, args.passage_length,
                                  seed=1)
    timer = StepTimer(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    output = tempfile.mkdtemp(dir=args.work)
    chunk_size = None
    if engine == "bgetune":
        from bgetune.models import load_model
        from bgetune.params import TrainParams
        from bgetune.training.trainer import fit

        model = load_model(str(folder), device, args.query_length, args.passage_length)
        chunks = {} if args.length_chunk_size is None else {"length_chunk_size": args.length_chunk_size}
        params = TrainParams(epochs=1, max_steps=steps, batch_size=args.batch_size, train_group_size=args.group_size,
                             lr=2e-5, warmup_ratio=0.0, log_every=10_000, checkpoint_every=0, temperature=0.02,
                             hardness_mode="off", **chunks)   # the same loss as the other engines'
        chunk_size = params.length_chunk_size
        fit(model, examples, params, seed=0, device=device, precision=precision, progress=False,
            callbacks=[timer.callback])
    elif engine == "sentence_transformers":
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Args
        from sentence_transformers.base.sampler import BatchSamplers
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

        model = SentenceTransformer(str(folder), device=device)
        model.max_seq_length = args.passage_length
        columns = {"anchor": [e.query for e in examples], "positive": [e.pos[0] for e in examples]}
        for j in range(args.group_size - 1):
            columns[f"negative_{j + 1}"] = [e.neg[j] for e in examples]
        trainer = SentenceTransformerTrainer(
            model=model, train_dataset=Dataset.from_dict(columns),
            loss=MultipleNegativesRankingLoss(model, scale=50.0),
            args=Args(output_dir=output, max_steps=steps, per_device_train_batch_size=args.batch_size,
                      learning_rate=2e-5, logging_steps=10_000, save_strategy="no", report_to="none",
                      batch_sampler=BatchSamplers.NO_DUPLICATES, use_cpu=device == "cpu", seed=0,
                      disable_tqdm=True, **trainer_precision_args(precision)),
            callbacks=[timer.callback])
        trainer.train()
    else:
        from transformers import HfArgumentParser

        from FlagEmbedding.finetune.embedder.encoder_only.base import (EncoderOnlyEmbedderDataArguments,
                                                                       EncoderOnlyEmbedderModelArguments,
                                                                       EncoderOnlyEmbedderRunner,
                                                                       EncoderOnlyEmbedderTrainingArguments)

        data = Path(output) / "train.jsonl"
        data.write_text("\n".join(json.dumps({"query": e.query, "pos": e.pos, "neg": e.neg}, ensure_ascii=False)
                                  for e in examples))
        argv = ["--model_name_or_path", str(folder), "--train_data", str(data), "--output_dir",
                str(Path(output) / "out"), "--learning_rate", "2e-5", "--max_steps", str(steps),
                "--per_device_train_batch_size", str(args.batch_size), "--train_group_size", str(args.group_size),
                "--temperature", "0.02", "--query_max_len", str(args.query_length), "--passage_max_len",
                str(args.passage_length), "--sentence_pooling_method", "cls", "--normalize_embeddings", "True",
                "--logging_steps", "10000", "--save_strategy", "no", "--report_to", "none", "--seed", "0",
                "--dataloader_drop_last", "False", "--use_cpu", str(device == "cpu")]
        argv += {"bf16": ["--bf16", "True"], "fp16": ["--fp16", "True"]}.get(precision, [])
        parsed = HfArgumentParser((EncoderOnlyEmbedderModelArguments, EncoderOnlyEmbedderDataArguments,
                                   EncoderOnlyEmbedderTrainingArguments)).parse_args_into_dataclasses(args=argv)
        runner = EncoderOnlyEmbedderRunner(*parsed)
        runner.trainer.add_callback(timer.callback)
        runner.trainer.train()
    seconds = timer.step_seconds(args.warmup)
    tokens = sum(min(len(e.query) + 2, args.query_length) + sum(min(len(t) + 2, args.passage_length)
                                                                 for t in e.pos + e.neg[:args.group_size - 1])
                 for e in examples[args.warmup * args.batch_size:steps * args.batch_size]) / max(len(seconds), 1)
    texts_per_step = args.batch_size * (1 + args.group_size)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"engine": engine, "shape": shape, "device": device, "precision": precision,
            "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
            "steps_timed": len(seconds), "seconds_per_step": statistics.mean(seconds),
            "texts_per_second": texts_per_step / statistics.mean(seconds), "tokens_per_step": tokens,
            "peak_memory_mb": round(peak, 1), "length_chunk_size": chunk_size}


def encoding_speed(shape: str, args) -> dict:
    import torch

    from bgetune.device import resolve_device, resolve_precision
    from bgetune.models import load_model
    from bgetune.search import encode

    device = resolve_device("auto")
    precision = resolve_precision(args.precision, device)
    model = load_model(str(build_model(shape, Path(args.work) / f"bge-{shape}")), device, args.query_length,
                       args.passage_length)
    texts = [e.pos[0] for e in synthetic_examples(args.encode_texts, 2, args.query_length, args.passage_length, 2)]
    encode(model, texts[:64], 64, progress=False, precision=precision)      # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    encode(model, texts, 256 if device.startswith("cuda") else 32, progress=False, precision=precision)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"shape": shape, "device": device, "precision": precision, "texts": len(texts),
            "texts_per_second": len(texts) / (time.perf_counter() - start)}


def faiss_speed(args) -> list[dict]:
    import numpy as np

    from bgetune.search import build_index, gpu_search_available, search

    rng = np.random.default_rng(0)
    passages = rng.standard_normal((args.faiss_passages, 768), dtype=np.float32)
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    queries = passages[rng.choice(len(passages), args.faiss_queries, replace=False)] + 0.01
    rows = []
    for device in ["cpu"] + (["cuda"] if gpu_search_available() else []):
        start = time.perf_counter()
        index = build_index(passages, "flat", device=device)
        built = time.perf_counter() - start
        search(index, queries[:16], 100)
        start = time.perf_counter()
        search(index, queries, 100)
        rows.append({"device": device, "passages": len(passages), "queries": len(queries), "build_s": built,
                     "queries_per_second": len(queries) / (time.perf_counter() - start)})
    return rows


def model_flops_per_token(shape: str, sequence: float) -> float:
    hidden, layers, _, intermediate = SHAPES[shape]
    non_embedding = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    return 6 * non_embedding + 12 * layers * sequence * hidden


def peak_tflops(gpu: str | None, override: float | None) -> float | None:
    if override:
        return override
    return next((v for k, v in PEAKS.items() if gpu and k in gpu), None)


def spawn(kind: str, *extra: str, failures: list | None = None) -> dict | None:
    """One worker process's result. With ``failures``, a worker that fails (an engine missing on this machine, out
    of memory) is recorded there with its last error line and the run goes on; without, it ends the run."""
    argv = [sys.executable, __file__, "--worker", kind, *extra] + [a for a in sys.argv[1:]]
    out = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    line = next((line for line in out.stdout.splitlines() if line.startswith("RESULT ")), None)
    if line is not None:
        return json.loads(line[7:])
    if failures is None:
        raise SystemExit(f"{kind} {extra} failed:\n{out.stderr[-3000:]}")
    lines = [x for x in out.stderr.strip().splitlines() if x.strip()]
    # The exception's line, not a progress bar's that a library printed after it.
    last = next((x for x in reversed(lines) if re.match(r"\s*[\w.]+(Error|Exception|Interrupt)\b", x)),
                lines[-1] if lines else f"exit status {out.returncode}")
    failures.append({"worker": kind, "args": list(extra), "error": last.strip()[:300]})
    print(f"{kind} {' '.join(extra)} failed: {last.strip()}\n{out.stderr[-2000:]}", file=sys.stderr, flush=True)
    return None


def main() -> None:
    import torch

    gpu = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["small", "base", "large"] if gpu else ["small"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--batch-size", type=int, default=32 if gpu else 8)
    parser.add_argument("--group-size", type=int, default=8 if gpu else 4)
    parser.add_argument("--query-length", type=int, default=64)
    parser.add_argument("--passage-length", type=int, default=512 if gpu else 256)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--length-chunk-size", type=int, default=None,
                        help="bgetune: train.length_chunk_size (default: the params default)")
    parser.add_argument("--steps", type=int, default=20 if gpu else 5)
    parser.add_argument("--warmup", type=int, default=5 if gpu else 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encode-texts", type=int, default=4096 if gpu else 256)
    parser.add_argument("--faiss-passages", type=int, default=1_000_000 if gpu else 200_000)
    parser.add_argument("--faiss-queries", type=int, default=4096 if gpu else 512)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--work", default=str(ROOT / ".bgetune" / "bench"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-shape", help=argparse.SUPPRESS)
    args = parser.parse_args()
    Path(args.work).mkdir(parents=True, exist_ok=True)
    if args.worker:
        torch.set_num_threads(os.cpu_count() or 1)
        result = (encoding_speed(args.worker_shape, args) if args.worker == "encode" else
                  {"faiss": faiss_speed(args)} if args.worker == "faiss" else
                  worker(args.worker, args.worker_shape, args))
        print("RESULT " + json.dumps(result))
        return
    runs, failures = [], []
    for shape in args.shapes:
        for repeat in range(args.repeats):
            order = args.engines if repeat % 2 == 0 else args.engines[::-1]
            for engine in order:
                result = spawn(engine, "--worker-shape", shape, failures=failures)
                if result is not None:
                    runs.append({**result, "repeat": repeat})
                    print(json.dumps(runs[-1]), flush=True)
                    # The files so far after every run: a run cut off by a time limit keeps what finished.
                    write(args, runs, [], [], failures, quiet=True)
    if not runs:
        raise SystemExit("every training run failed: " + "; ".join(f["error"] for f in failures))
    encoding = [spawn("encode", "--worker-shape", shape, failures=failures) for shape in args.shapes]
    encoding = [e for e in encoding if e is not None]
    search = (spawn("faiss", failures=failures) or {"faiss": []})["faiss"]
    write(args, runs, encoding, search, failures)


def summarise(args, runs: list[dict]) -> list[dict]:
    rows = []
    for shape in args.shapes:
        by_engine = {e: [r for r in runs if r["shape"] == shape and r["engine"] == e] for e in args.engines}
        reference = by_engine.get("bgetune")
        for engine, items in by_engine.items():
            if not items:
                continue
            speeds = [r["texts_per_second"] for r in items]
            row = {"shape": shape, "engine": engine, "texts_per_second": statistics.mean(speeds),
                   "min": min(speeds), "max": max(speeds), "repeats": len(speeds),
                   "seconds_per_step": statistics.mean(r["seconds_per_step"] for r in items),
                   "peak_memory_mb": max(r["peak_memory_mb"] for r in items)}
            paired = [(a, b) for a in reference or [] for b in items if a["repeat"] == b["repeat"]]
            if paired:   # the same repeat's runs (a failed run leaves its repeat unpaired)
                ratios = [a["texts_per_second"] / b["texts_per_second"] for a, b in paired]
                row["bgetune_ratio"] = statistics.mean(r["texts_per_second"] for r in reference) / \
                    row["texts_per_second"]
                row["bgetune_ratio_range"] = [min(ratios), max(ratios)]
            peak = peak_tflops(items[0].get("gpu"), args.peak_tflops)
            if peak:
                sequence = items[0]["tokens_per_step"] / (args.batch_size * (1 + args.group_size))
                flops = model_flops_per_token(shape, sequence) * items[0]["tokens_per_step"]
                row["mfu"] = flops / row["seconds_per_step"] / (peak * 1e12)
            rows.append(row)
    return rows


def versions() -> dict:
    """The libraries the engines ran on, and the CUDA build: a GPU machine's image may hold other versions."""
    from importlib import metadata

    import torch

    found = {"python": platform.python_version(), "cuda": torch.version.cuda}
    for name in ("torch", "transformers", "sentence-transformers", "FlagEmbedding", "faiss-cpu", "faiss-gpu-cu12"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def write(args, runs, encoding, search, failures=(), quiet: bool = False) -> None:
    first = runs[0]
    device = first["gpu"] or "cpu"
    rows = summarise(args, runs)
    settings = {k: v for k, v in vars(args).items() if k not in ("worker", "worker_shape", "work", "out")}
    from provenance import git_commit

    commit = git_commit()
    record = {"device": device, "precision": first["precision"], "settings": settings,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), **versions()},
              "command": " ".join(["python", "bench/train_speed.py"] + sys.argv[1:]), "commit": commit,
              "date": time.strftime("%Y-%m-%d"),
              "summary": rows, "runs": runs, "encoding": encoding, "faiss": search, "failed": list(failures)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "train_speed_" + ("cpu" if device == "cpu" else device.replace(" ", "_").lower())
    (out / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"### Training throughput — {device}, {first['precision']}, batch {args.batch_size}, group "
             f"{args.group_size}, query {args.query_length} / passage {args.passage_length} tokens, "
             f"{args.steps} timed steps × {args.repeats} repeats", "",
             "| shape | engine | texts/s (mean, min–max) | s/step | peak MB | bgetune ÷ engine (range) | MFU |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ratio = (f"{r['bgetune_ratio']:.2f}× ({r['bgetune_ratio_range'][0]:.2f}–{r['bgetune_ratio_range'][1]:.2f})"
                 if "bgetune_ratio" in r else "–")
        mfu = f"{r['mfu']:.0%}" if "mfu" in r else "–"
        lines.append(f"| {r['shape']} | {r['engine']} | {r['texts_per_second']:.1f} ({r['min']:.1f}–{r['max']:.1f}) | "
                     f"{r['seconds_per_step']:.2f} | {r['peak_memory_mb']:.0f} | {ratio} | {mfu} |")
    lines += ["", "| shape | encoding texts/s |", "| --- | --- |"]
    lines += [f"| {e['shape']} | {e['texts_per_second']:.1f} |" for e in encoding]
    lines += ["", "| faiss exact search | passages | queries/s | build s |", "| --- | --- | --- | --- |"]
    lines += [f"| {s['device']} | {s['passages']:,} | {s['queries_per_second']:.0f} | {s['build_s']:.2f} |"
              for s in search]
    lines += [f"\nFailed: {f['worker']} {' '.join(f['args'])}: {f['error']}" for f in failures]
    lines += ["", f"Command: `{record['command']}`; commit {commit}, {record['date']}."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
