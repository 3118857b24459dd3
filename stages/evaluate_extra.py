"""evaluate-extra: every model in eval.extra_models, evaluated like the pipeline's own → metrics/extra.json."""
from _common import run, start

from bgetune import pipeline

params = start("evaluate-extra")
run("evaluate-extra", pipeline.run_evaluate_extra, params, data_dir="data", metrics_dir="metrics")
