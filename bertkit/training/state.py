"""Training checkpoints that a killed run resumes from exactly: weights, optimizer, scheduler, RNG, data position.

A checkpoint is a folder ``step-0000100/`` holding a loadable model folder (config.json, model.safetensors, and the
vocab when a tokenizer is given) plus ``trainer_state.pt``. It is written under a temporary name and renamed into
place, and ``latest`` (a text file naming it) is replaced atomically after: a kill at any moment leaves either the
previous checkpoint or the new one, never half of one. ``trainer_state.pt`` holds only tensors and plain Python
values and is read with ``weights_only=True``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_text_atomic
from .options import option_fields

logger = logging.getLogger(__name__)
LATEST = "latest"
STATE_FILE = "trainer_state.pt"
RUN_CONFIG = "run_config.json"  # in checkpoints/: the settings of the run, for --resume


def rng_states(device: torch.device | None = None) -> dict[str, Any]:
    """The generators a training step draws from: torch's (dropout on the CPU), Python's, and on a GPU run every
    visible GPU's (dropout there draws from the device's own generator)."""
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device is not None and device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], device: torch.device | None = None) -> None:
    """Put the generators back where :func:`rng_states` found them (the GPUs' too, when both runs use GPUs)."""
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    on_gpu = device is not None and device.type == "cuda"
    saved = states.get("cuda")
    if saved is None:
        if on_gpu:
            logger.warning("the checkpoint holds no GPU random state (it was written on the CPU): dropout on the GPU "
                           "draws differently from an uninterrupted run")
        return
    if not on_gpu:
        logger.warning("the checkpoint holds GPU random state but this run is on the CPU: dropout draws "
                       "differently from an uninterrupted run")
        return
    count = torch.cuda.device_count()
    if len(saved) != count:
        logger.warning("the checkpoint holds the random state of %d GPU(s), this process sees %d: the first %d "
                       "are restored", len(saved), count, min(len(saved), count))
    for index, values in enumerate(saved[:count]):
        torch.cuda.set_rng_state(values, index)


def save_checkpoint(
    directory: str | os.PathLike, step: int, model: Any, state: dict[str, Any], tokenizer: Any = None, keep: int = 2
) -> Path:
    """Write ``directory/step-N`` (model folder + trainer state) atomically, point ``latest`` at it, prune old ones."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step-{step:07d}"
    staging = directory / f".{final.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, tokenizer=tokenizer)
    torch.save(state, staging / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    write_text_atomic(directory / LATEST, final.name + "\n")
    # newest first by the time they were written, not by their step (a rerun may write lower steps); the one
    # `latest` names is never removed
    older = sorted((p for p in directory.glob("step-*") if p != final), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    for old in older[max(keep - 1, 0):] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


RUN_FILES = ("metrics.jsonl", "checkpoints", "summary.json", "model", "generator", "best", "results.json")


def check_output_dir(directory: str | os.PathLike, resume: bool, overwrite: bool, clear: bool = True,
                     resumable: bool = True) -> None:
    """Refuse to start a new run over an earlier one (its model, metrics and checkpoints would be lost), and to
    resume where there is nothing to resume; ``overwrite`` clears the earlier run's files first (where ``clear``:
    one rank of a distributed run). ``resumable``: whether the command takes ``--resume`` (its advice says so)."""
    directory = Path(directory)
    earlier = [name for name in RUN_FILES if (directory / name).exists()]
    if resume:
        if latest_checkpoint(directory / "checkpoints") is None:
            raise ValueError(f"--resume: {directory} has no checkpoint to continue from (checkpoints are written "
                             "every save_steps; 0 writes none); drop --resume to start a new run")
        return
    if earlier and not overwrite:
        again = "continue it with --resume, " if resumable else ""
        raise ValueError(f"{directory} already holds a run ({', '.join(earlier)}): {again}replace it with "
                         "--overwrite, or choose another output_dir")
    for name in earlier if clear else []:
        target = directory / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The folder ``latest`` names, or None when no checkpoint was completed."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    folder = Path(directory) / pointer.read_text(encoding="utf-8").strip()
    if not folder.is_dir():
        raise ValueError(f"{pointer} names {folder.name}, which does not exist; delete {pointer} to start afresh")
    return folder


def load_trainer_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The trainer state of a checkpoint folder; a corrupt or truncated file is a clear error."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a training checkpoint: {STATE_FILE} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ValueError(f"cannot read the training checkpoint {path} (corrupt or truncated?): {error}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{path} is not a bertkit trainer state")
    return state


def save_run_config(directory: str | os.PathLike, config: Any) -> Path:
    """Keep a run's settings beside its checkpoints, so that ``--resume`` continues the same run."""
    return write_text_atomic(Path(directory) / "checkpoints" / RUN_CONFIG,
                             json.dumps(config.to_dict(), indent=2, default=str) + "\n")


def saved_run_config(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The settings the run in ``directory`` was started (or last resumed) with; None for runs that kept none."""
    path = Path(directory) / "checkpoints" / RUN_CONFIG
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"cannot read {path} (the run's settings): {error}; delete it to resume with the "
                         "settings given now") from None
    return values if isinstance(values, dict) else None


def check_resumed_config(directory: str | os.PathLike, config: Any) -> None:
    """Refuse to resume with settings that change what the run computes (each named, with the run's value);
    ``type(config).RESUME_CHANGEABLE`` may differ (how long it runs, how it reports; max_steps is warned about)."""
    saved = saved_run_config(directory)
    if saved is None:
        logger.warning("%s keeps no run settings (%s; checkpoints of an older bertkit): the settings given now are "
                       "used as they are", directory, RUN_CONFIG)
        return
    try:
        before = type(config).from_dict(saved)
    except ValueError as error:
        raise ValueError(f"cannot resume: {Path(directory) / 'checkpoints' / RUN_CONFIG} no longer reads as "
                         f"{type(config).KIND} settings ({error})") from None
    changed = [f"{f.name} {getattr(config, f.name)!r} (the run's: {getattr(before, f.name)!r})"
               for f in option_fields(type(config))  # the command's own settings first, as --help lists them
               if f.name not in type(config).RESUME_CHANGEABLE and getattr(config, f.name) != getattr(before, f.name)]
    if changed:
        raise ValueError(f"--resume continues the run in {directory} with its own settings, but these differ: "
                         f"{'; '.join(changed)}. Leave them out (the run's are used), or start a new run with "
                         "--overwrite")
