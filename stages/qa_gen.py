"""qa-gen: corpus + existing questions → data/pairs/{train,val,test}.jsonl."""
from _common import run, start

from bgetune import pipeline

params = start("qa-gen")
run("qa-gen", pipeline.run_qa_gen, params, data_dir="data", metrics_dir="metrics")
