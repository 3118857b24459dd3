"""merge: weighted average of the base, the fine-tuned model and merge.models → models/merged."""
from _common import run, start

from bgetune.steps import merge

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("merge", merge.run, start("merge"))
