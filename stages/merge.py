"""merge: weighted average of the (vocabulary-expanded) base and the fine-tuned model → models/merged."""
from _common import run, start

from bgetune import pipeline

params = start("merge")
run("merge", pipeline.run_merge, params, data_dir="data", models_dir="models", metrics_dir="metrics")
