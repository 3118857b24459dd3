"""qa-gen: passages + existing questions → data/pairs/{train,val,test}.jsonl, results/qa_gen.json."""
from _common import run, start

from bgetune.steps import qa_gen

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("qa-gen", qa_gen.run, start("qa-gen"))
