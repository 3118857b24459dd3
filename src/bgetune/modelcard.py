"""Model cards (README.md) for the folders the pipeline writes, from the pipeline's own facts.

The front matter uses the Hugging Face hub's model-card fields as sentence-transformers writes them
(``library_name``, ``pipeline_tag``, ``base_model``, ``language``, ``tags``); the body says what the model is, what
it was trained on and with which loss and hyperparameters, how it scored, and how to load it in
sentence-transformers and in FlagEmbedding's ``FlagModel`` with the pooling it needs (FlagModel pools CLS by
default: a mean-pooled model loaded that way gives different vectors).

Example::

    card = finetuned_card(params, train_summary, data_summary)
    Path("models/finetuned/README.md").write_text(card)
"""
from __future__ import annotations

import re

from bgetune.lexical import describe_lexical

CARD_TERM_WEIGHTS = "bm25_term_weights.json in this folder"   # publish copies the table beside the card

_CJK = re.compile(r"[\u3400-\u9fff]")


def language_of(texts: list[str]) -> list[str]:
    """["zh"] when most sampled texts hold CJK characters, else ["en"]."""
    sample = texts[:200]
    chinese = sum(1 for t in sample if _CJK.search(t))
    return ["zh"] if sample and chinese >= len(sample) / 2 else ["en"]


def _front_matter(base: str, language: list[str], tags: list[str]) -> str:
    base_line = f"base_model: {base}\n" if not base.startswith("bundled:") else \
        f"base_model: sentence-transformers/{base.split(':', 1)[1]}\n"
    return ("---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\n" + base_line
            + "language:\n" + "".join(f"- {x}\n" for x in language)
            + "tags:\n" + "".join(f"- {t}\n" for t in ["sentence-transformers", "feature-extraction", "bgetune",
                                                       *tags]) + "---\n\n")


def usage(path: str, pooling: str, instruction: str, query_length: int, passage_length: int) -> str:
    flag_instruction = f'query_instruction_for_retrieval="{instruction}", ' if instruction else ""
    return f"""## How to use

sentence-transformers (the query instruction is saved as the model's `query` prompt; `encode_query` adds it and
uses the query length {query_length}, `encode_document` the passage length {passage_length}):

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("{path}")
queries = model.encode_query(["..."])
passages = model.encode_document(["..."])
scores = model.similarity(queries, passages)
```

FlagEmbedding (this model pools **{pooling}**; FlagModel's default is `cls`, so pass it):

```python
from FlagEmbedding import FlagModel

model = FlagModel("{path}", pooling_method="{pooling}", {flag_instruction}query_max_length={query_length},
                  passage_max_length={passage_length}, use_fp16=True)
queries = model.encode_queries(["..."])
passages = model.encode_corpus(["..."])
```
"""


def _table(rows: list[tuple[str, object]]) -> str:
    return "| | |\n| --- | --- |\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)


def _row_start(vocab, counts: dict | None) -> str:
    """How the new embedding rows began, in words (vocab.init and what it managed)."""
    if vocab.init == "dictionary" and counts:
        known = (f"; the base's own rows of {counts['known_rows_from_entry']} corpus characters re-started the same "
                 f"way" if "known_rows_from_entry" in counts else "")
        return (f"English senses in `{vocab.dictionary}`: {counts['rows_from_entry']} from their own entry, "
                f"{counts['rows_from_parts']} from their parts', {counts['rows_kept']} without one (noise){known}")
    if vocab.init == "cooccurrence" and counts:
        return (f"the corpus's co-occurrence (PPMI + SVD): {counts['rows_from_cooccurrence']} rows, "
                f"{counts['rows_kept']} not in the corpus (noise)")
    return "the mean of their old pieces, else seeded noise"


def base_card(params, vocab_summary: dict, passages: int) -> str:
    language = ["zh"] if vocab_summary.get("characters_added") else ["en"]
    rows = [("base", f"`{params.model.base}`"), ("characters added", vocab_summary.get("characters_added", 0)),
            ("terms added", vocab_summary.get("terms_added", 0)),
            ("new rows started from", _row_start(params.vocab, vocab_summary.get("init"))),
            ("[UNK] rate on the corpus", f"{vocab_summary.get('unk_rate_before')} → "
                                         f"{vocab_summary.get('unk_rate_after')}"),
            ("corpus passages", passages)]
    return (_front_matter(params.model.base, language, ["vocabulary-expanded"])
            + "# Vocabulary-expanded base (bgetune)\n\n`" + params.model.base + "` with the corpus's missing "
            "characters (and domain terms) added to its tokenizer and embedding matrix; new rows are initialised, "
            "not trained. This is the model bgetune fine-tunes from, not a model to deploy.\n\n" + _table(rows))


def describe_loss(params) -> str:
    """``params.loss`` with its temperature and every term on, in words (the train log and the model card)::

        describe_loss(params.train)   # "infonce, temperature 0.02, hardness weighting of in_batch_negatives (α 9.0)"
    """
    parts = [params.loss]
    if params.loss in ("infonce", "cached_infonce"):
        parts.append(f"temperature {params.temperature}")
        if list(params.directions) != ["query_to_doc"]:
            parts.append(f"directions {'+'.join(params.directions)} ({params.partition_mode})")
        if params.hardness_mode != "off":
            parts.append(f"hardness weighting of {params.hardness_mode} (α {params.hardness_strength})")
    if params.noise_weight:
        parts.append(f"noise penalty {params.noise_weight}")
    if params.distill_weight:
        parts.append(f"distillation {params.distill_weight}")
    return ", ".join(parts)


def trained_lr(train) -> str:
    """The learning rate the run trained at, as a card or report shows it: a LoRA run's adapters take train.lora.lr
    where it is set (training/lora.py's adapter_lr), every other run train.lr."""
    if train.method == "lora" and train.lora.lr is not None:
        return f"{train.lora.lr} (LoRA adapters)"
    return f"{train.lr}"


def finetuned_card(params, summary: dict, facts: dict, test: dict | None = None) -> str:
    """``summary``: results/train.json; ``facts``: pooling, lengths, language, instruction, data sizes;
    ``test``: {model name: headline metrics} for the test-split table (base, fine-tuned, merged, BM25)."""
    train = params.train
    stage = summary.get("stage1", {})
    rows = [("base model", f"`{params.model.base}` (vocabulary expanded: +{facts.get('tokens_added', 0)} tokens)"),
            ("method", f"{train.method}" + (f" (LoRA r={train.lora.r}, alpha={train.lora.alpha}, merged)"
                                           if train.method == "lora" else "")),
            ("loss", describe_loss(train)),
            ("training pairs", f"{facts.get('train_queries')} queries with mined hard negatives "
                               f"(group size {train.train_group_size})"),
            ("corpus", f"{facts.get('passages')} passages"),
            ("hyperparameters", f"lr {trained_lr(train)}"
                                + (f" (embeddings {train.embedding_lr})" if train.embedding_lr else "")
                                + f", batch {train.batch_size} per device, "
                                f"{train.epochs} epoch(s), warm-up {train.warmup_ratio}, weight decay "
                                f"{train.weight_decay}, optimizer {train.optimizer}, seed "
                                f"{params.seed_of('train')}"),
            ("steps", stage.get("steps")),
            ("precision / device", f"{facts.get('precision')} / {facts.get('device')}"),
            ("query instruction", f"`{facts.get('instruction')}`" if facts.get("instruction") else "none"),
            ("pooling", facts.get("pooling"))]
    validation = stage.get("validation")
    if validation:
        rows.append((f"val {validation['metric']} (best)", f"{validation['best']:.4f} at step "
                                                            f"{validation['best_step']}"))
    if summary.get("stage2"):
        rows.append(("stage 2", f"{summary['stage2'].get('examples')} pairs, {summary['stage2'].get('steps')} steps, "
                                f"loss {params.train.stage2.loss}, lr {params.train.stage2.lr}"))
    body = (_front_matter(params.model.base, facts.get("language", ["zh"]), ["bge", "retrieval"])
            + f"# {facts.get('title', 'Fine-tuned embedding model')} (bgetune)\n\n"
            + f"{facts.get('description', '')}\n\n## Training\n\n" + _table(rows))
    if test:
        body += "\n" + test_table(test)
    windows = facts.get("windows") or {}
    if windows.get("window_vectors") and windows.get("weight"):
        body += "\n" + windows_section(windows)
    if facts.get("hybrid"):
        body += "\n" + hybrid_section(facts["hybrid"])
    body += "\n" + usage(facts.get("path", "path/to/this/folder"), facts.get("pooling", "cls"),
                         facts.get("instruction", ""), facts.get("query_max_length", 64),
                         facts.get("passage_max_length", 512))
    if facts.get("titled_passages"):
        body += ("\nIts passages began with their title on a line of their own (`chunk.title_prefix` put it before "
                 f"{facts['titled_passages']} of them): encode yours the same way, `title + \"\\n\" + text` where "
                 "a passage has a title.\n")
    return body


def fusion_recipe(hybrid: dict) -> str:
    """The BM25 fusion the evaluation chose, as a formula a deployment can follow: ``hybrid`` is
    results/eval/<model>.json's "hybrid" (method, weights, rrf_k). The report's advice and the card both say it."""
    dense, lexical = hybrid["weights"]
    if hybrid.get("method") == "convex":
        return (f"a weighted sum of scores, score = {dense} × dense + {lexical} × BM25, each retriever's top-100 "
                "scores min-max normalised per query (its best 1, its worst 0; a passage missing from one list "
                "scores 0 there)")
    k = hybrid.get("rrf_k", 60)
    return (f"reciprocal-rank fusion with k = {k}, score = {dense} / ({k} + dense rank) + {lexical} / ({k} + BM25 rank), over "
            "each retriever's top 100")


def windows_section(windows: dict) -> str:
    """How the test results indexed the passages when the evaluation scored them small-to-big (``eval.windows``;
    ``windows`` is results/eval/<model>.json's "windows")."""
    weight = windows["weight"]
    return (f"## Indexing\n\nThe test results index each passage with its windows of whole sentences up to "
            f"{windows['max_chars']} characters (each starting up to {windows['overlap_chars']} characters back) and "
            f"rank a passage by (1 − {weight}) × its own cosine + {weight} × its best vector's (itself or a "
            "window); it is still the whole passage that is returned. "
            f"Index yours the same way ({windows['window_vectors']} window vectors beside "
            f"{windows['passages']} passages here).\n")


def hybrid_section(hybrid: dict) -> str:
    """How to fuse this model with BM25 as the evaluation did: ``hybrid`` as for ``fusion_recipe``, with the test
    NDCG@10 it reached and BM25's."""
    scores = ""
    if hybrid.get("ndcg@10") is not None and hybrid.get("bm25_ndcg@10") is not None:
        scores = (f" On the test split this fusion scored NDCG@10 {hybrid['ndcg@10']:.4f} against BM25's "
                  f"{hybrid['bm25_ndcg@10']:.4f}.")
    choice = bm25_choice_sentence(hybrid.get("bm25_choice"))
    if hybrid["weights"][0] == 0:
        return ("## With BM25\n\nOn the val split BM25 alone ranked best (the dense side got weight 0): use "
                f"{describe_lexical(hybrid.get('bm25'), CARD_TERM_WEIGHTS)} for this domain, or fine-tune further."
                + choice + scores + "\n")
    return (f"## With BM25 (hybrid)\n\nWeights chosen on the val split: {fusion_recipe(hybrid)}; "
            f"{describe_lexical(hybrid.get('bm25'), CARD_TERM_WEIGHTS)}.{choice}{scores}\n")


def bm25_choice_sentence(choice: dict | None) -> str:
    """Val's choice between plain BM25 and BM25 with learned query-term weights (eval.term_weights.tune), as a
    sentence starting with a space; "" when val did not choose."""
    if not choice:
        return ""
    plain, weighted = choice["plain_val_ndcg@10"], choice["term_weighted_val_ndcg@10"]
    if choice["chosen"] == "term_weighted":
        return (f" Val chose the term weights: the fusion scored val NDCG@10 {weighted:.4f} with them, {plain:.4f} "
                "with plain BM25.")
    return (f" Val chose plain BM25: the fusion scored val NDCG@10 {plain:.4f} with it, {weighted:.4f} with query-term "
            "weights learned from the train pairs.")


def test_table(test: dict) -> str:
    keys = [("ndcg@10", "NDCG@10"), ("recall@1", "Recall@1"), ("recall@10", "Recall@10"), ("mrr@10", "MRR@10")]
    lines = ["## Test-split results\n", "| model | " + " | ".join(label for _, label in keys) + " |",
             "| --- |" + " --- |" * len(keys)]
    for name, metrics in test.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[k]:.4f}" if k in metrics else "–" for k, _ in keys) + " |")
    return "\n".join(lines) + "\n"


def card_facts(params, model, passages, examples, tokens_added: int, instruction: str, device: str,
               precision: str) -> dict:
    from bgetune.modelcard import language_of
    from bgetune.models import lengths_of, pooling_mode

    query_length, passage_length = lengths_of(model)
    return {"title": "Fine-tuned embedding model", "path": "models/finetuned",
            "description": f"`{params.model.base}` fine-tuned by bgetune on {len(passages)} domain passages.",
            "tokens_added": tokens_added, "train_queries": len(examples), "passages": len(passages),
            "pooling": pooling_mode(model), "instruction": instruction, "query_max_length": query_length,
            "passage_max_length": passage_length, "language": language_of([p.text for p in passages]),
            "device": device, "precision": precision}
