"""mine-negatives: training pairs → data/train.jsonl (FlagEmbedding format + ids, strategies, scores)."""
from _common import run, start

from bgetune.steps import mine_negatives

params = start("mine-negatives")
run("mine-negatives", mine_negatives.run, params)
