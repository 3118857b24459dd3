# Two commands for a fresh machine (see README):
#   make repro   set up .venv, run the pipeline on the shipped sample with the bundled model, show the metrics
#   make test    set up .venv and run the test suite (what .ci/run runs)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg

.PHONY: setup repro test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: a CPU machine takes the CPU wheel, never a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[cpu,dev]'
	# Chromium renders the HTML report and the offline plots in their tests: Debian's package where we may
	# install it, else those tests skip.
	command -v chromium >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; } || \
	  echo "chromium not installed: the rendering tests will be skipped"
	# vega, vega-lite and vega-embed from the npm registry, inlined so `dvc plots show` works offline.
	$(BIN)/python tools/offline_plots.py || echo "offline plot template not made: dvc plots will load vega from a CDN"
	touch $@

repro: setup
	$(BIN)/dvc repro
	$(BIN)/dvc metrics show

# The tests run in parallel (pytest-xdist), one worker per CPU core up to 4 (each holds torch and its models;
# each test keeps to one torch thread): pytest took 10.7 minutes against 17.1 in series on a 2-core AMD EPYC
# (2026-12-03). --dist loadfile keeps a file's tests on one worker, so a module's fixture (the sample pipeline, the
# DVC project) is built once.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1))")

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf data/corpus.jsonl data/existing_pairs.jsonl data/splits.json data/pairs data/train.jsonl \
	       models/base models/finetuned models/merged models/publish models/checkpoints results .bgetune dvc_plots
