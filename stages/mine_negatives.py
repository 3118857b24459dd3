"""mine-negatives: training pairs → data/train.jsonl (FlagEmbedding format + ids, strategies, scores)."""
from _common import run, start

from bgetune.steps import mine_negatives

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("mine-negatives", mine_negatives.run, start("mine-negatives"))
