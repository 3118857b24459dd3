"""publish: models/publish/{finetuned,merged} with model cards holding the test results."""
from _common import run, start

from bgetune.steps import publish

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("publish", publish.run, start("publish"))
