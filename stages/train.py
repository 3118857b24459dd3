"""train: data/train.jsonl → models/finetuned on sentence-transformers' Trainer; with train.devices > 1 this script
relaunches itself under torchrun (one process per GPU), so `dvc repro` trains on every GPU."""
import os
import sys

from _common import run, start


def main() -> None:
    params = start("train")
    if params.train.devices > 1 and "LOCAL_RANK" not in os.environ and params.train.backend != "flagembedding":
        # torchrun replaces this process; each of its workers runs this script again, with RANK and WORLD_SIZE set.
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={params.train.devices}", __file__]
        os.execv(sys.executable, argv)
    if params.model.device.startswith("cuda:") and "CUDA_VISIBLE_DEVICES" not in os.environ:
        # the Trainer uses the first visible GPU
        os.environ["CUDA_VISIBLE_DEVICES"] = params.model.device.split(":")[1]

    from bgetune.steps import train

    run("train", train.run, params)


# Under the guard: worker processes (bgetune.parallel) import this script again and must not rerun the stage.
if __name__ == "__main__":
    main()
