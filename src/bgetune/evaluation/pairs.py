"""Pair metrics: does the model score a query's positive above unrelated passages, and by how much?

- ``pair_auc``: ROC AUC of similarity as a relevant/irrelevant classifier over (query, positive) and (query, random
  passage) pairs;
- ``pair_accuracy`` / ``pair_threshold``: the best single similarity threshold's balanced accuracy (classes
  weighted equally, so ten negatives per positive do not inflate it);
- ``separation``: mean positive similarity minus mean negative similarity.

Example::

    metrics, scores = pair_metrics(query_vectors, passage_vectors, positives, negatives_per_query=10, seed=42)
    metrics["pair_auc"], scores["positive"][:3]
"""
from __future__ import annotations

import random

import numpy as np


def sample_negatives(n_passages: int, positives: list[list[int]], per_query: int, seed: int) -> list[list[int]]:
    """Seeded uniform passages that are not the query's positives (fewer when the corpus is tiny)."""
    out = []
    for q, pos in enumerate(positives):
        rng = random.Random(f"{seed}:{q}")
        allowed = n_passages - len(set(pos))
        want = min(per_query, max(allowed, 0))
        chosen: list[int] = []
        banned = set(pos)
        while len(chosen) < want:
            i = rng.randrange(n_passages)
            if i not in banned:
                banned.add(i)
                chosen.append(i)
        out.append(chosen)
    return out


def best_threshold(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising (TPR + TNR) / 2 for the rule score >= threshold."""
    scores = np.concatenate([positive, negative])
    labels = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    tp = np.cumsum(labels)            # predicted positive: everything at or above this score
    fp = np.cumsum(1 - labels)
    # Only cut between distinct scores: tied scores are all in or all out.
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    tpr = tp / max(len(positive), 1)
    tnr = 1 - fp / max(len(negative), 1)
    balanced = (tpr + tnr) / 2
    balanced = np.where(last_of_tie, balanced, -1)
    best = int(np.argmax(balanced))
    everything_negative = 0.5   # threshold above every score
    if balanced[best] < everything_negative:
        return float(scores[0]) + 1e-6, everything_negative
    return float(scores[best]), float(balanced[best])


def pair_metrics(query_vectors: np.ndarray, passage_vectors: np.ndarray, positives: list[list[int]],
                 negatives_per_query: int = 10, seed: int = 0) -> tuple[dict, dict]:
    from sklearn.metrics import roc_auc_score

    negatives = sample_negatives(len(passage_vectors), positives, negatives_per_query, seed)
    pos = np.array([float(query_vectors[q] @ passage_vectors[i]) for q, idx in enumerate(positives) for i in idx])
    neg = np.array([float(query_vectors[q] @ passage_vectors[i]) for q, idx in enumerate(negatives) for i in idx])
    if not len(pos) or not len(neg):
        return {}, {"positive": pos.tolist(), "negative": neg.tolist()}
    auc = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])
    threshold, accuracy = best_threshold(pos, neg)
    metrics = {"pair_auc": round(float(auc), 6), "pair_accuracy": round(accuracy, 6),
               "pair_threshold": round(threshold, 6), "separation": round(float(pos.mean() - neg.mean()), 6),
               "positive_similarity": round(float(pos.mean()), 6), "negative_similarity": round(float(neg.mean()), 6)}
    return metrics, {"positive": pos.tolist(), "negative": neg.tolist()}
