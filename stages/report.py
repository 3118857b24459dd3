"""report: results → results/report.html (self-contained), results/significance.json."""
from _common import run, start

from bgetune.steps import report

# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    run("report", report.run, start("report"))
