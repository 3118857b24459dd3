"""split: raw documents → data/corpus.jsonl, data/splits.json, data/existing_pairs.jsonl, models/base.json."""
from _common import run, start

from bgetune import pipeline

params = start("split")
run("split", pipeline.run_split, params, raw_dir=params.data.raw_dir, data_dir="data", metrics_dir="metrics",
    models_dir="models")
