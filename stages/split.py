"""split: raw documents → data/corpus.jsonl, data/splits.json, data/existing_pairs.jsonl, results/data.json."""
from _common import run, start

from bgetune.steps import split

params = start("split")
run("split", split.run, params)
