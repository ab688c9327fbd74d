"""Where a run computes: ``device: auto | cpu | cuda | cuda:N``, the batches moved there, bf16 autocast on it, and
the DDP backend that goes with it.

``auto`` takes the GPU when torch sees one, else the CPU. Under ``torchrun`` every rank takes its own GPU,
``cuda:LOCAL_RANK`` (one process per GPU), because NCCL refuses two ranks on one device. Nothing here initialises
CUDA on a CPU run: ``torch.cuda.is_available()`` asks the driver without creating a context.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from typing import Any

import torch

SPECS = "auto, cpu, cuda or cuda:N"
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def check_spec(spec: str | torch.device) -> str:
    """The spec in canonical form (``"cuda:1"``), or a ValueError naming the accepted ones; needs no GPU."""
    text = str(spec).strip().lower()
    match = _SPEC.match(text)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"device must be {SPECS}, got {str(spec)!r}")
    return text


def local_rank() -> int | None:
    """This process's rank on its machine under ``torchrun`` (``LOCAL_RANK``), else None."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value is not None and value.strip().isdigit() else None


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """The ``torch.device`` a spec names, checked against the GPUs this process sees (a clear error otherwise); a
    ``torch.device`` is one already chosen (e.g. ``cuda:LOCAL_RANK``) and is only checked."""
    text = check_spec(spec)
    if text == "cpu" or (text == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"device: {text} requested but torch.cuda.is_available() is False (no GPU visible, or a "
                         "CPU-only torch build); use device: cpu or auto")
    count = torch.cuda.device_count()
    if ":" in text:
        index = int(text.split(":")[1])
        if index >= count:
            raise ValueError(f"device: {text} but only {count} GPU{'s' * (count != 1)} visible (cuda:0 … "
                             f"cuda:{count - 1})")
        ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        if ranks > 1 and not isinstance(spec, torch.device):
            raise ValueError(f"device: {text} would put all {ranks} torchrun processes of this machine on one GPU; "
                             "use device: cuda (each rank takes cuda:LOCAL_RANK)")
        return torch.device("cuda", index)
    index = local_rank() or 0
    if index >= count:
        raise ValueError(f"LOCAL_RANK {index} but only {count} GPU{'s' * (count != 1)} visible: launch one process "
                         f"per GPU (torchrun --nproc-per-node {count})")
    return torch.device("cuda", index)


def ddp_backend(device: torch.device) -> str:
    """NCCL for GPUs, gloo for the CPU: the backend follows where the tensors are, not what the machine has."""
    return "nccl" if device.type == "cuda" else "gloo"


def autocast_context(device: torch.device, bf16: bool) -> AbstractContextManager:
    """bf16 autocast on ``device`` (one code path for the CPU and GPUs); disabled when ``bf16`` is False."""
    if bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"bf16: true but {torch.cuda.get_device_name(device)} has no bfloat16 support; set "
                         "bf16: false")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def move_batch(batch: Any, device: torch.device) -> Any:
    """The batch's tensors (in dicts, lists and tuples, nested) on ``device``; anything else unchanged.

    Copies to a GPU are asynchronous (``non_blocking``): the host goes on preparing work while they run.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):  # also BatchEncoding, a dict
        return type(batch)({k: move_batch(v, device) for k, v in batch.items()})
    if isinstance(batch, list):
        return [move_batch(v, device) for v in batch]
    if type(batch) is tuple:
        return tuple(move_batch(v, device) for v in batch)
    return batch


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a model's weights are (the CPU for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
