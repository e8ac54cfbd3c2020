"""Data parallelism under ``torchrun``: the process group, row shards and small collectives.

``torchrun --nproc_per_node=P`` starts P processes with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` in their environment; :func:`init_from_env` joins them into one process
group (NCCL for CUDA tensors when CUDA is there, gloo for CPU tensors) and pins each
process to its own GPU.
Outside ``torchrun`` it returns a world of one process and starts nothing, so every
caller runs unchanged as a single process.

The collectives here move only small or O(N) host arrays (scores, per-sample training
dynamics, a run token); model gradients are all-reduced by DistributedDataParallel.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that publishes."""
        return self.rank == 0


SINGLE = World()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env() -> World:
    """Join the ``torchrun`` process group (once); a world of one process when not under ``torchrun``."""
    if not launched_by_torchrun():
        return SINGLE
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)  # "cuda" means this process's own GPU from now on
        # gloo for host arrays and objects (and a CPU model); NCCL for a model on the GPUs
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
        # Left to the interpreter's teardown, a gloo group's worker threads can abort the process
        # at exit ("terminate called without an active exception"; pytorch/pytorch#190489).
        atexit.register(leave_process_group)
        log.info("rank %d of %d joined the %s process group", world.rank, world.size, dist.get_backend())
    return world


def leave_process_group() -> None:
    """Destroy this process's group, if it has one (at exit: every collective has returned by then)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_rows(n: int, rank: int, world: int, align: int = 1) -> slice:
    """Rank ``rank``'s contiguous share of rows ``0..n-1``: near-equal, in rank order, covering all rows.

    Boundaries fall on multiples of ``align`` (all but the last share hold whole blocks of
    ``align`` rows), so that a shard batched by ``align`` meets exactly the batches one process
    would form, and per-sample results are computed on identical inputs.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is not in a world of {world}")
    if align < 1:
        raise ValueError(f"align must be at least 1, got {align}")
    blocks = -(-n // align)
    begin, end = (blocks * rank) // world, (blocks * (rank + 1)) // world
    return slice(min(begin * align, n), min(end * align, n))


def split_batch(idx: torch.Tensor, group: torch.Tensor | None, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s part of one training batch ``idx`` (a contiguous slice of it).

    With ``group`` (a group objective, whose batches hold whole requests side by side), cuts
    move to the nearest request boundary so that no request's loss is split between ranks.
    """
    if world == 1:
        return idx
    n = len(idx)
    cuts = [(n * r) // world for r in range(world + 1)]
    if group is not None and n:
        g = group[idx]
        starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.nonzero(g[1:] != g[:-1]).flatten() + 1])
        starts = torch.cat([starts, torch.tensor([n])])
        cuts = [int(starts[torch.argmin((starts - c).abs())]) for c in cuts]
    return idx[cuts[rank] : cuts[rank + 1]]


def barrier(world: World) -> None:
    if world.is_distributed:
        dist.barrier()


def broadcast_object(value, world: World):
    """Rank 0's ``value`` on every rank."""
    if not world.is_distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_objects(value, world: World) -> list:
    """Every rank's ``value`` (small, picklable), in rank order, on every rank."""
    if not world.is_distributed:
        return [value]
    out: list = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def sum_arrays(arrays: list[np.ndarray], world: World) -> list[np.ndarray]:
    """Element-wise sums over the ranks (on every rank). Used to merge per-sample arrays that each rank
    filled only at its own samples (zeros elsewhere): the sum is exact, every term but one being zero."""
    if not world.is_distributed:
        return arrays
    out = []
    for array in arrays:
        tensor = torch.from_numpy(np.array(array, copy=True))  # on the host: reduced by gloo
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        out.append(tensor.numpy())
    return out
