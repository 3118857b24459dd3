"""Training curves for ``dvc plots``: written with DVCLive from the training summary once training ends.

Built from the Trainer's log history (restored whole by a resumed run), not logged live, so the curve has every
step before and after a resume exactly once, and agrees with results/train.json. Stage 2 continues the step axis.

Example::

    write_curves("results/train_log", [("", stage1_summary), ("stage2", stage2_summary)])
    # results/train_log/plots/metrics/train/loss.tsv, .../val/ndcg@10.tsv, ...
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("bgetune")


def curve_points(stages: list[tuple[str, dict]]) -> dict[str, list[tuple[int, float]]]:
    """metric name → [(step, value)] over the stages in order, stage k's steps after stage k-1's."""
    points: dict[str, list[tuple[int, float]]] = {}
    offset = 0
    for _, summary in stages:
        for entry in summary.get("loss_curve", []):
            points.setdefault("train/loss", []).append((offset + entry["step"], entry["loss"]))
        for entry in summary.get("lr_curve", []):
            points.setdefault("train/learning_rate", []).append((offset + entry["step"], entry["learning_rate"]))
        for entry in (summary.get("validation") or {}).get("history", []):
            for key, value in entry.items():
                if key != "step" and isinstance(value, (int, float)):
                    points.setdefault(f"val/{key}", []).append((offset + entry["step"], float(value)))
        offset += summary.get("steps", 0)
    return points


def _live(folder: str | Path):
    from dvclive import Live

    options = dict(dir=str(folder), save_dvc_exp=False, dvcyaml=None, resume=False, report=None)
    try:
        return Live(**options)
    except Exception as err:   # noqa: BLE001 — only the case below is handled, anything else is re-raised
        if type(err).__name__ != "SCMError":
            raise
        # DVCLive 3.49 asks git for the current commit and fails in a repository without any (a user's first
        # `dvc repro` before their first commit); the curves need no experiment tracking, so go without it.
        import dvclive.live

        original = dvclive.live.get_dvc_repo
        dvclive.live.get_dvc_repo = lambda: None
        try:
            return Live(**options)
        finally:
            dvclive.live.get_dvc_repo = original


def write_curves(folder: str | Path, stages: list[tuple[str, dict]]) -> None:
    points = curve_points(stages)
    live = _live(folder)
    by_step: dict[int, dict[str, float]] = {}
    for name, values in points.items():
        for step, value in values:
            by_step.setdefault(step, {})[name] = value
    for step in sorted(by_step):
        live.step = step
        for name, value in by_step[step].items():
            live.log_metric(name, value, timestamp=False)
    live.end()
