"""evaluate <name>: one retriever on the test split — base | finetuned | merged | bm25 | extra <key>."""
import sys

from _common import run, start

from bgetune.steps import evaluate

names = ("base", "finetuned", "merged", "bm25")
if not (len(sys.argv) == 2 and sys.argv[1] in names) and not (len(sys.argv) == 3 and sys.argv[1] == "extra"):
    sys.exit("usage: python stages/evaluate.py base|finetuned|merged|bm25, or: python stages/evaluate.py extra <key>")
if sys.argv[1] == "extra":
    params = start(f"evaluate extra {sys.argv[2]}")
    if sys.argv[2] not in params.eval.extra_models:
        sys.exit(f"[evaluate] eval.extra_models has no model named {sys.argv[2]!r}")
    run("evaluate", evaluate.run, params, f"extra_{sys.argv[2]}", extra_reference=params.eval.extra_models[sys.argv[2]])
else:
    params = start(f"evaluate {sys.argv[1]}")
    run("evaluate", evaluate.run, params, sys.argv[1])
