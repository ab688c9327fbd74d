"""DDP under ``torchrun``: gloo on the CPU, nccl on GPUs (one process per GPU, ``cuda:LOCAL_RANK``); single-process
runs pass straight through."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .device import ddp_backend, resolve_device


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of a ``torchrun`` launch."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device: torch.device | None = None) -> None:
    """Join the process group torchrun set up (once), with the backend of the run's ``device`` (default: ``auto``'s);
    no-op in a single process."""
    if launched_by_torchrun() and not dist.is_initialized():
        device = device if device is not None else resolve_device("auto")
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's collectives (all_gather_object too) use the current device
        dist.init_process_group(ddp_backend(device))


def backend() -> str | None:
    """The process group's backend (``"gloo"``, ``"nccl"``), or None when not distributed."""
    return dist.get_backend() if is_active() else None


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_active() else 0


def world_size() -> int:
    return dist.get_world_size() if is_active() else 1


def is_main() -> bool:
    return rank() == 0


def wrap(model: nn.Module, device: torch.device | None = None) -> nn.Module:
    """The model DDP-wrapped when distributed (gradients averaged across ranks), else itself; ``device``: the one
    GPU of this rank (None on the CPU)."""
    if not is_active():
        return model
    on_gpu = device is not None and device.type == "cuda"
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if on_gpu else None)


def no_sync(model: nn.Module) -> AbstractContextManager:
    """Skip the gradient all-reduce on accumulation micro-steps."""
    return model.no_sync() if isinstance(model, nn.parallel.DistributedDataParallel) else nullcontext()


def gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order (one-element list when not distributed)."""
    if not is_active():
        return [value]
    values: list[Any] = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def barrier() -> None:
    if is_active():
        dist.barrier()
