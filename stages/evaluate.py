"""evaluate <name>: test-split retrieval metrics for base | finetuned | merged | bm25 → metrics/<name>.json."""
import sys

from _common import run, start

from bgetune import pipeline

if len(sys.argv) != 2 or sys.argv[1] not in ("base", "finetuned", "merged", "bm25"):
    sys.exit("usage: python stages/evaluate.py base|finetuned|merged|bm25")
params = start(f"evaluate {sys.argv[1]}")
run("evaluate", pipeline.run_evaluate, params, sys.argv[1], data_dir="data", models_dir="models",
    metrics_dir="metrics")
