"""bench/fusion_normalisations.py: its min-max/floor fusion is the evaluate stage's convex fusion; the others differ
where they should."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fusion_normalisations import fuse, in_pool, normalise, ranked_ids  # noqa: E402

from bgetune.evaluation.hybrid import convex_fusion  # noqa: E402


def test_minmax_floor_ranks_as_the_stage_convex_fusion():
    rng = np.random.default_rng(0)
    dense, lexical = rng.normal(size=(5, 40)), rng.exponential(size=(5, 40))
    ids = [f"p{i}" for i in range(40)]
    pool = 6
    # Ties are ordered differently (the stage: by list; this bench: by corpus position), so no ties: weights inside
    # (0, 1) but not 0.5 (each list's best, alone in it, would tie), and the top 4 (each pool's floor, missing from
    # the other list, ties at the bottom).
    for weight in (0.3, 0.7):
        ours = ranked_ids(fuse(dense, lexical, weight, "minmax", "floor", pool), ids, depth=4)
        for row in range(5):
            lists, scores = [], []
            for matrix in (dense, lexical):
                order = np.argsort(-matrix[row], kind="stable")[:pool]
                lists.append([ids[i] for i in order])
                scores.append([float(matrix[row, i]) for i in order])
            assert ours[row] == convex_fusion(lists, scores, [weight, 1 - weight], depth=4)


def test_exact_fill_pulls_a_passage_by_how_far_it_falls_short():
    # Passage 2 is dense's best and outside BM25's top 2, just under it (near) or far under it (far): the floor fill
    # scores both alike, the exact fill by how far they fall short.
    dense = np.array([[0.1, 0.2, 0.9, 0.0]])
    near = np.array([[3.0, 2.0, 1.9, 0.0]])
    far = np.array([[3.0, 2.0, -50.0, 0.0]])
    floor_near = fuse(dense, near, 0.5, "minmax", "floor", pool=2)
    floor_far = fuse(dense, far, 0.5, "minmax", "floor", pool=2)
    assert floor_near[0, 2] == floor_far[0, 2] == pytest.approx(0.5)
    assert fuse(dense, near, 0.5, "minmax", "exact", pool=2)[0, 2] == pytest.approx(0.5 + 0.5 * (1.9 - 2.0))
    assert fuse(dense, far, 0.5, "minmax", "exact", pool=2)[0, 2] < -10
    assert fuse(dense, near, 0.5, "minmax", "exact", pool=2)[0, 3] == -np.inf   # in neither pool


def test_normalisations():
    scores = np.array([[4.0, 2.0, 0.0, -2.0]])
    assert normalise(scores, "minmax", pool=3).tolist() == [[1.0, 0.5, 0.0, -0.5]]
    assert normalise(scores, "minmax_all").tolist() == [[1.0, 2 / 3, 1 / 3, 0.0]]
    z = normalise(scores, "zscore", pool=3)
    assert z[0, :3].mean() == pytest.approx(0.0) and z[0, :3].std() == pytest.approx(1.0)
    assert normalise(np.zeros((1, 3)), "minmax").tolist() == [[1.0, 1.0, 1.0]]
    assert in_pool(np.array([[1.0, 3.0, 3.0, 2.0]]), pool=2).tolist() == [[False, True, True, False]]
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(scores, "rank")
