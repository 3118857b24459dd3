"""vocab: model.base with the corpus's vocabulary added → models/base, results/vocab.json."""
from _common import run, start

from bgetune.steps import vocab

params = start("vocab")
run("vocab", vocab.run, params)
