"""publish: models/publish/{finetuned,merged} with model cards holding the test results."""
from _common import run, start

from bgetune.steps import publish

params = start("publish")
run("publish", publish.run, params)
