"""merge: weighted average of the base, the fine-tuned model and merge.models → models/merged."""
from _common import run, start

from bgetune.steps import merge

params = start("merge")
run("merge", merge.run, params)
