"""rerank: data/train.jsonl → models/reranker, a cross-encoder over the hybrid's top k (off unless rerank.enabled).
On a GPU it trains on the first one visible (CUDA_VISIBLE_DEVICES chooses), as the Trainer does."""
from _common import run, start

from bgetune.steps import rerank

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("rerank", rerank.run, start("rerank"))
