"""Embed one column of a training batch in length-sorted chunks, so that a short text is not padded to the batch's
longest.

The collator tokenises a column (a batch's queries, or all its passages) together, padded to the longest text. On
real data lengths spread widely — meddialog's doctors' answers have a median of 104 tokens and batches of 64 of
them are padded to ~170 — so about a third of the encoder's work in a step goes to padding. Sorting the column by
length and embedding it in chunks of ``chunk_size`` texts, each cut to its own longest text, gives the same
embeddings (padding is masked out of attention and pooling) for less work; every chunk keeps its graph, so the
loss and its gradients are those of one pass, and the in-batch negatives are unchanged.

Why hand-written: sentence-transformers sorts by length only in ``encode`` (no gradients, inference only); the
Trainer's ``group_by_length`` changes which examples share a batch — the in-batch negatives — which this does not.

The setting ``auto`` (the default) chunks on a CPU only. There the padding is arithmetic saved: chunks of 16 made a
meddialog step 1.60× faster on a 2-core CPU (docs/benchmarks.md). On a GPU the padding's arithmetic is nearly free
and many small passes are not: chunks of 16 made a BGE-base step (batch 32, group 8, 512 tokens, bf16) 4× slower on
an H200 than one pass (2.26 against 0.56 s), so there a column is one pass.

Example::

    features = model.preprocess(passages)
    embeddings = embed_in_length_chunks(model, features, chunk_size=16)   # == model(features)["sentence_embedding"]
    resolve_length_chunk_size("auto", "cuda")                              # 0: one pass on a GPU
"""
from __future__ import annotations

import torch

CPU_CHUNK_SIZE = 16


def resolve_length_chunk_size(setting: int | str, device_type: str) -> int:
    """train.length_chunk_size as used on ``device_type`` ("cpu", "cuda", "mps"): ``auto`` is 16 on a CPU and 0
    (one pass per column) on an accelerator; a number is used as given."""
    if setting == "auto":
        return CPU_CHUNK_SIZE if device_type == "cpu" else 0
    return int(setting)


def embed_in_length_chunks(model, features: dict, chunk_size: int) -> torch.Tensor:
    """``model(features)["sentence_embedding"]``, computed in chunks of at most ``chunk_size`` texts of similar
    length, each without the padding columns none of its texts needs; ``chunk_size`` 0 (or a column no larger
    than it) is one pass."""
    mask = features.get("attention_mask")
    rows = 0 if mask is None else mask.shape[0]
    if chunk_size <= 0 or rows <= chunk_size:
        return model(features)["sentence_embedding"]
    lengths = mask.sum(dim=1)
    # Longest first, ties in the original order: the same batch always gives the same chunks (reproducible).
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks = []
    for start in range(0, rows, chunk_size):
        index = order[start:start + chunk_size]
        chunk = {key: _take_rows(value, index, rows) for key, value in features.items()}
        # The columns any text of the chunk uses: a prefix with right padding, a suffix with left padding.
        used = chunk["attention_mask"].any(dim=0)
        chunk = {key: value[:, used] if _is_token_matrix(value, mask) else value for key, value in chunk.items()}
        chunks.append(model(chunk)["sentence_embedding"])
    embeddings = torch.cat(chunks)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(rows, device=order.device)
    return embeddings[inverse]


def _take_rows(value, index: torch.Tensor, rows: int):
    if isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == rows:
        return value[index]
    return value


def _is_token_matrix(value, mask: torch.Tensor) -> bool:
    """input_ids, attention_mask, token_type_ids and the like: one entry per (text, token position)."""
    return isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == mask.shape[1]
