"""Single-process or torchrun-launched DistributedDataParallel, behind one small interface.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT (multi-node: --nnodes/--node_rank/--rdzv_*);
this reads them, picks NCCL on GPUs and Gloo on the CPU, and gives each process its local GPU.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as td
from torch import nn


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> "Dist":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device == "auto":
            dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        elif device == "cuda":
            dev = torch.device(f"cuda:{local}")
        else:
            dev = torch.device(device)
        if world > 1 and not td.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            td.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        return cls(rank, world, dev)

    def wrap(self, module: nn.Module, find_unused: bool = False) -> nn.Module:
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)

    def no_sync(self, module: nn.Module, last: bool):
        """Skip the gradient all-reduce on all but the last micro-batch of an accumulated step."""
        if self.world > 1 and not last:
            return module.no_sync()
        return contextlib.nullcontext()

    def autocast(self, amp: str):
        if amp == "none" or self.device.type != "cuda":
            return contextlib.nullcontext()
        if amp not in ("bf16", "fp16"):
            raise ValueError(f"train.amp must be none, bf16 or fp16, got {amp!r}")
        return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalar logs over processes (every process must call it)."""
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], device=self.device, dtype=torch.float64)
        td.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t)}

    def barrier(self) -> None:
        if self.world > 1:
            td.barrier()

    def close(self) -> None:
        if self.world > 1 and td.is_initialized():
            td.destroy_process_group()
