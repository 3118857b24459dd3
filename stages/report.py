"""report: results → results/report.html (self-contained), results/significance.json."""
from _common import run, start

from bgetune.steps import report

params = start("report")
run("report", report.run, params)
