"""train: data/train.jsonl → models/finetuned (sentence-transformers folder); resumes from models/checkpoints/."""
from _common import run, start

from bgetune import pipeline

params = start("train")
run("train", pipeline.run_train, params, data_dir="data", models_dir="models", metrics_dir="metrics",
    checkpoint_dir="models/checkpoints/train")
