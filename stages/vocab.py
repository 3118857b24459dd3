"""vocab: model.base with the corpus's vocabulary added → models/base, results/vocab.json."""
from _common import run, start

from bgetune.steps import vocab

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("vocab", vocab.run, start("vocab"))
