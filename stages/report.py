"""report: metrics/*.json + plots → metrics/report.html (self-contained, opens offline)."""
from _common import run, start

from bgetune import pipeline

start("report")
run("report", pipeline.run_report, "metrics")
