"""split: raw documents → data/corpus.jsonl, data/splits.json, data/existing_pairs.jsonl, results/data.json."""
from _common import run, start

from bgetune.steps import split

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("split", split.run, start("split"))
