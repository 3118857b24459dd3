"""Data-parallel training under torchrun, on the CPU with gloo: two processes with the batch split between them
reach the same weights as one process with the whole batch (in-batch candidates gathered, gradients averaged)."""
import json
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = """
import json, sys
import torch
from safetensors.torch import save_file
from bgetune.models import load_model
from bgetune.params import TrainParams
from bgetune.records import TrainExample
from bgetune.training.distributed import DistributedContext
from bgetune.training.loop import train

model_dir, out, loss = sys.argv[1], sys.argv[2], sys.argv[3]
torch.set_num_threads(1)
model = load_model(model_dir, 64)
for module in model.modules():
    if isinstance(module, torch.nn.Dropout):
        module.p = 0.0   # dropout masks would differ between one forward of 4 and two forwards of 2
animals = ["cat", "dog", "fish", "bird", "red", "blue", "green", "apple"]
examples = [TrainExample(query=a, pos=[f"{a} {a}"], pos_ids=[a], neg=[f"{o} {o}" for o in animals if o != a][:3],
                         neg_ids=[o for o in animals if o != a][:3]) for a in animals]
context = DistributedContext.from_environment()
params = TrainParams(epochs=2, batch_size=int(sys.argv[4]), lr=1e-3, warmup_ratio=0.0, temperature=0.05,
                     train_group_size=3, checkpoint_every=0, loss=loss, mini_batch_size=2)
result = train(model, examples, params, seed=3, progress=False)
if context.is_main:
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    print("RESULT " + json.dumps(result))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(script, args, processes):
    if processes == 1:
        argv = [sys.executable, str(script)] + args
    else:
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                f"--master_port={free_port()}", "--master_addr=127.0.0.1", str(script)] + args
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={
        **__import__("os").environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))[7:])


@pytest.mark.integration
def test_two_processes_reach_the_weights_of_one_with_the_whole_batch(tiny_model_dir, tmp_path):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    single = run(script, [str(tiny_model_dir), str(tmp_path / "one.safetensors"), "infonce", "4"], 1)
    double = run(script, [str(tiny_model_dir), str(tmp_path / "two.safetensors"), "infonce", "2"], 2)
    assert single["processes"] == 1 and double["processes"] == 2
    assert single["steps"] == double["steps"] == 4
    assert double["first_loss"] == pytest.approx(single["first_loss"], rel=1e-4)
    one, two = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    for key, value in one.items():
        assert torch.allclose(value, two[key], atol=1e-5), key
    from bgetune.models import load_model
    start = load_model(str(tiny_model_dir), 64).state_dict()
    assert any(not torch.allclose(start[k], one[k], atol=1e-4) for k in one if one[k].is_floating_point())
