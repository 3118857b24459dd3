"""Data-parallel training under torchrun: each process embeds its share of every batch, in-batch candidates are
gathered from all processes (with gradients), and gradients are averaged after backward.

Every process samples the *whole* global batch with the same seed, so each knows every group's ids (for the
false-negative mask) without communication; only embeddings travel.

    torchrun --nproc_per_node 4 stages/train.py          # CUDA: NCCL, one GPU per process
    torchrun --nproc_per_node 2 stages/train.py          # CPU: gloo (how the tests check it)

Example::

    context = DistributedContext.from_environment()      # world_size 1 outside torchrun: everything is a no-op
    mine = context.shard(groups)                          # this process's slice of the batch
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> "DistributedContext":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        return cls(rank=dist.get_rank(), world_size=world_size, local_rank=local_rank)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def even_batch(self, batch: list[int]) -> list[int]:
        """The batch cut to a multiple of the world size (every process needs the same number of queries)."""
        return batch[: len(batch) - len(batch) % self.world_size] if self.enabled else batch

    def shard(self, items: list) -> list:
        per = len(items) // self.world_size
        return items[self.rank * per:(self.rank + 1) * per]

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate equal-shaped tensors from every process in rank order, keeping the gradient path."""
        if not self.enabled:
            return tensor
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor.contiguous()), dim=0)

    def average_gradients(self, model) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        for parameter in model.parameters():
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
                parameter.grad /= self.world_size

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        import torch.distributed as dist

        device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world_size
