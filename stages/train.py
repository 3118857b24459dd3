"""train: data/train.jsonl → models/finetuned on sentence-transformers' Trainer; with train.devices > 1 this script
relaunches itself under torchrun (one process per GPU), so `dvc repro` trains on every GPU."""
import os
import sys

from _common import run, start

params = start("train")
if params.train.devices > 1 and "LOCAL_RANK" not in os.environ and params.train.backend != "flagembedding":
    # torchrun's launcher replaces this process; each worker runs this script again, with RANK and WORLD_SIZE set.
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={params.train.devices}", __file__]
    os.execv(sys.executable, argv)
if params.model.device.startswith("cuda:") and "CUDA_VISIBLE_DEVICES" not in os.environ:
    os.environ["CUDA_VISIBLE_DEVICES"] = params.model.device.split(":")[1]   # the Trainer uses the first visible GPU

from bgetune.steps import train  # noqa: E402

run("train", train.run, params)
