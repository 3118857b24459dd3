"""qa-gen: passages + existing questions → data/pairs/{train,val,test}.jsonl, results/qa_gen.json."""
from _common import run, start

from bgetune.steps import qa_gen

params = start("qa-gen")
run("qa-gen", qa_gen.run, params)
