"""mine-negatives: training pairs → data/train.jsonl (FlagEmbedding format, with ids, strategies and scores)."""
from _common import run, start

from bgetune import pipeline

params = start("mine-negatives")
run("mine-negatives", pipeline.run_mine, params, data_dir="data", models_dir="models", metrics_dir="metrics")
