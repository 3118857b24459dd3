#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run: a lent GPU machine gives minutes, not hours.
#   1. tests/test_device.py: encoding and training in bf16 on the GPU, and the pipeline's stages with device auto
#      (split → mine → train → merge → evaluate) running there;
#   2. bench/train_speed.py on BGE-base and BGE-large shapes (bf16, batch 32, group 8, 512-token passages):
#      bgetune against sentence-transformers' trainer and FlagEmbedding's, with encoding and faiss search speed.
#
#     bash bench/gpu_checks.sh OUT_DIR
#
# On a machine where bgetune is installed (`pip install -e '.[gpu]'`) it runs as is. On a bare GPU image that holds
# torch but not the rest, put the missing wheels in .whl/ (`bash bench/gpu_wheels.sh` fetches them; jieba goes as
# jieba.zip: it ships no wheel) and the script installs them into /tmp/site first (it has no unzip). Each part has
# its own time limit, so one that hangs leaves the others' results, and train_speed.py rewrites its files after
# every run. Set BGETUNE_COMMIT to the commit the tree was copied from: the copy's own .git, if any, may be older.
set -u
out=${1:?usage: bash bench/gpu_checks.sh OUT_DIR}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg DVC_NO_ANALYTICS=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  if [ -f .whl/jieba.zip ]; then python3 -m zipfile -e .whl/jieba.zip /tmp/site || exit 1; fi
  export PYTHONPATH=/tmp/site:$PWD/src
fi
date -u +%FT%TZ
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'cuda', \
torch.version.cuda, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__)"
timeout 120 python3 -m pytest -q -p no:cacheprovider -rs --durations=5 tests/test_device.py tests/test_merging.py 2>&1 \
  | tee "$out/gpu_tests.log"
timeout 240 python3 bench/train_speed.py --shapes base --repeats 2 --steps 10 --warmup 3 --out "$out/base"
timeout 240 python3 bench/train_speed.py --shapes large --repeats 2 --steps 8 --warmup 3 --encode-texts 2048 \
  --faiss-passages 200000 --out "$out/large"
date -u +%FT%TZ
