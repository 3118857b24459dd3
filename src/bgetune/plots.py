"""Plots a person would rather look at than read, written as PNG (they render offline in `dvc plots show`).

Example::

    score_histograms({"positive": [0.8, 0.9], "dense": [0.6, 0.7]}, "metrics/plots/mining_scores.png",
                     title="Base-model similarity of positives and negatives")
"""
from __future__ import annotations

from pathlib import Path

from bgetune.records import atomic_open


def score_histograms(groups: dict[str, list[float]], path: str | Path, title: str, xlabel: str = "cosine similarity"
                     ) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    values = [v for scores in groups.values() for v in scores]
    if values:
        low, high = min(values), max(values)
        bins = [low + (high - low) * i / 40 for i in range(41)] if high > low else 10
        for name, scores in groups.items():
            if scores:
                ax.hist(scores, bins=bins, alpha=0.45, density=True, label=f"{name} (n={len(scores)})")
        ax.legend(fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png")
    _pyplot().close(fig)


def bar_chart(labels: list[str], values: list[float], path: str | Path, title: str, ylabel: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.bar(range(len(values)), values, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    _save(fig, path)


def curves(series: dict[str, list[tuple[float, float]]], path: str | Path, title: str, xlabel: str, ylabel: str,
           log_x: bool = False) -> None:
    """One line per series name, e.g. Recall@k per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, points in series.items():
        if points:
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
