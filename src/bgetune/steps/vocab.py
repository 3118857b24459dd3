"""vocab: the base model the pipeline trains from (models/base): ``model.base`` with the corpus's missing characters
(and domain terms) added to its vocabulary, new rows optionally warmed up by masked-language-model steps on the
corpus; results/vocab.json says what was added and how the [UNK] rate and tokens per passage changed.

Mining scores candidates with this model, training starts from it and merging mixes it back in, so all three use
one and the same expanded base.

Reads params: seed, vocab, model.base, model.pooling, model.trust_remote_code, model.device, model.precision,
model.query_max_length, model.passage_max_length, model.query_instruction, model.eval_instruction.

Example::

    summary = run(load_params(), root=".")
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from bgetune.outputs import StageOutputs
from bgetune.records import project_path, read_passages, write_json

log = logging.getLogger("bgetune")
OUTS = ["models/base", "results/vocab.json"]


def run(params, root: str | Path = ".", progress: bool = True) -> dict:
    import torch

    from bgetune.device import resolve_device, resolve_precision, runtime
    from bgetune.modelcard import base_card
    from bgetune.models import expand_for_corpus, instructions, load_model, save_model

    root = Path(root)
    started = time.perf_counter()
    torch.manual_seed(params.seed)
    device = resolve_device(params.model.device)
    passages = read_passages(root / "data/corpus.jsonl")
    model = load_model(params.model.base, device, params.model.query_max_length, params.model.passage_max_length,
                       params.model.pooling, params.model.trust_remote_code)
    texts = [p.text for p in passages]
    vocab = params.vocab
    if vocab.term_file:
        vocab = vocab.model_copy(update={"term_file": str(project_path(root, vocab.term_file))})
    if vocab.init == "dictionary" and not vocab.dictionary.startswith("bundled:"):
        vocab = vocab.model_copy(update={"dictionary": str(project_path(root, vocab.dictionary))})
    summary = {"base": params.model.base, **expand_for_corpus(model, texts, vocab, params.seed)}
    precision = "fp32"   # the expansion's arithmetic; the warm-up's steps run in the model's precision
    if params.vocab.warmup_steps:
        from bgetune.warmup import masked_lm_warmup

        precision = resolve_precision(params.model.precision, device)
        summary["warmup"] = masked_lm_warmup(model, texts, params.vocab, params.seed, device, precision, progress,
                                             old_vocab_size=summary["vocab_size_before"])
    summary["runtime"] = runtime(device, precision)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    _, eval_instruction = instructions(params.model, params.model.base)
    with StageOutputs("vocab", OUTS, root) as out:
        save_model(model, out.path("models/base"), eval_instruction, base_card(params, summary, len(passages)))
        write_json(out.path("results/vocab.json"), summary)
    return summary
