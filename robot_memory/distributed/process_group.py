"""Training over several processes: PyTorch's own launcher (torchrun) and DDP.

``robot-memory train-policy --processes N`` re-runs itself under
``torch.distributed.run --standalone --nproc-per-node N`` (one machine); on
several machines run ``torchrun`` yourself with ``--nnodes``/``--rdzv-endpoint``
(docs/deployment.md). Each process then finds its rank in the environment that
torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...) and
joins the process group: NCCL on CUDA (one GPU per process, by local rank),
gloo on the CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands in a training run (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one process that prints, writes and saves."""
        return self.rank == 0


def under_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def join(device: str = "auto") -> ProcessGroup:
    """This process's place: from torchrun's environment when it started us
    (and then the process group is initialised), else a single process.
    ``device``: auto (CUDA when there is one), cpu or cuda."""
    import torch

    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda, but torch sees no CUDA device")
    if not under_torchrun():
        return ProcessGroup(device="cuda" if use_cuda else "cpu")
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return ProcessGroup(rank, world, local, f"cuda:{local}" if use_cuda else "cpu")


def leave(group: ProcessGroup) -> None:
    if group.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(module: str, argv: list[str], processes: int) -> int:
    """Run ``python -m module argv`` as ``processes`` processes on this machine
    under torchrun; returns its exit status."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        module,
        *argv,
    ]
    # one OpenMP thread each unless the user says otherwise (torchrun's own default)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return subprocess.run(command, env=env, check=False).returncode
