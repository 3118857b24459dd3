"""Length negatives: passages about as long as the positive, so length cannot be learned as a shortcut.

Example::

    candidates = length_candidates(passage_lengths, positive_lengths, tolerance=0.2, max_candidates=100)
"""
from __future__ import annotations

import numpy as np


def length_candidates(passage_lengths: list[int], positive_lengths: list[float], tolerance: float,
                      max_candidates: int) -> list[list[tuple[int, float, int]]]:
    lengths = np.asarray(passage_lengths, dtype=np.float64)
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    out = []
    for target in positive_lengths:
        lo = np.searchsorted(sorted_lengths, target * (1 - tolerance), side="left")
        hi = np.searchsorted(sorted_lengths, target * (1 + tolerance), side="right")
        window = order[lo:hi]
        closeness = np.abs(lengths[window] - target)
        ranked = window[np.argsort(closeness, kind="stable")][:max_candidates]
        out.append([(int(i), float(1.0 - abs(lengths[i] - target) / max(target, 1.0)), r)
                    for r, i in enumerate(ranked, start=1)])
    return out
