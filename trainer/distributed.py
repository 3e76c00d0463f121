"""What training needs from torch.distributed: the process group under torchrun, the run's
seeded generator per rank, and the few collectives the loop takes its decisions with (so every
rank decides alike). Without torchrun they are the single-process answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist


def choose_device(setting: str) -> torch.device:
    """The device of a ``device`` setting: ``auto`` is CUDA when present (this process's current
    one, as torchrun sets it), else the CPU; a ValueError when ``cuda`` is asked for and absent."""
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available")
    if setting != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init_distributed(device: str) -> bool:
    """Set up the process group under torchrun (gloo on CPU, NCCL on GPU); True when this
    call started it."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


@contextmanager
def run_generator(seed: int) -> Iterator[None]:
    """torch's global generator seeded from (seed, rank) inside ``fork_rng``: the caller's
    generator state is back as it was afterwards."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        reseed(seed)
        yield


def reseed(seed: int) -> None:
    """Seed torch's global generator from (seed, rank); only inside ``run_generator``."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(seed * 1_000_003 + rank)


class Ranks:
    """This process's place among the ranks, and the collectives the loop uses."""

    def __init__(self) -> None:
        self.distributed = dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.device = torch.device("cpu")  # where flags travel; set once the device is known

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def everyone(self, flag: bool) -> bool:
        """True when the flag holds on every rank (an epoch ends when any rank runs out, so
        every rank takes the same number of steps)."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def anyone(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag: True when it holds on any rank (one collective for all of them)."""
        if not self.distributed:
            return flags
        t = torch.tensor([int(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, by rank."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered
