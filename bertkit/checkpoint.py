"""Hugging Face model folders: read and write ``config.json`` + weights, mapping parameter names.

Checkpoints name BERT's weights with or without the ``bert.`` prefix (a bare ``BertModel`` saves none, the head
models save ``bert.…`` plus ``cls.…``), older ones call LayerNorm's parameters ``gamma``/``beta``. Loading matches
each stored tensor to the model whatever the prefix; saving writes the layout transformers itself writes.
Pickles are never trusted: ``pytorch_model.bin`` is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import write_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
PYTORCH_FILE = "pytorch_model.bin"
BASE_PREFIX = "bert."
_RENAMES = ((".gamma", ".weight"), (".beta", ".bias"))
_IGNORED_SUFFIXES = ("position_ids",)  # buffers some checkpoints carry, recomputed here


@dataclass
class LoadingReport:
    """What loading matched: tensors the model expected but the file lacked, and the reverse."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def find_weights(folder: Path) -> Path:
    """The weights file of a model folder: model.safetensors, else pytorch_model.bin."""
    for name in (SAFETENSORS_FILE, PYTORCH_FILE):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} holds no weights: looked for {SAFETENSORS_FILE} and {PYTORCH_FILE}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file; a corrupt or truncated file is a clear error."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path), device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        raise ValueError(f"cannot read weights from {path}: {error}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return state


def _canonical(name: str) -> str:
    for old, new in _RENAMES:
        if name.endswith(old):
            return name[: -len(old)] + new
    return name


def match_names(stored: list[str], expected: set[str]) -> dict[str, str]:
    """Map stored tensor names to the model's names, adding or dropping the ``bert.`` prefix as needed."""
    mapping = {}
    for name in stored:
        if name.endswith(_IGNORED_SUFFIXES):
            continue
        base = _canonical(name)
        stripped = base.removeprefix(BASE_PREFIX)
        # transformers stores the MLM bias twice (cls.predictions.bias and its alias decoder.bias).
        aliases = [base, BASE_PREFIX + stripped, stripped, base.replace("predictions.decoder.bias", "predictions.bias")]
        target = next((a for a in aliases if a in expected), None)
        if target is not None and target not in mapping.values():
            mapping[name] = target
    return mapping


def tied_names(model: nn.Module) -> set[str]:
    """Names of parameters that share storage with an earlier one (the MLM decoder's tied word embeddings)."""
    seen: dict[int, str] = {}
    tied = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if tensor.data_ptr() in seen:
            tied.add(name)
        else:
            seen[tensor.data_ptr()] = name
    return tied


def load_weights(model: nn.Module, folder: Path) -> LoadingReport:
    """Copy a folder's weights into ``model``; log what is missing or unexpected; fail on a shape mismatch."""
    path = find_weights(folder)
    stored = read_state_dict(path)
    own = model.state_dict()
    mapping = match_names(list(stored), set(own))
    for name, target in mapping.items():
        if tuple(stored[name].shape) != tuple(own[target].shape):
            raise ValueError(
                f"{path.name}: tensor {name} has shape {tuple(stored[name].shape)} but the model built from "
                f"config.json expects {tuple(own[target].shape)} for {target}; does config.json match the weights?"
            )
    model.load_state_dict({t: stored[n] for n, t in mapping.items()}, strict=False)
    tied = tied_names(model)
    by_target = {t: n for n, t in mapping.items()}
    leftover = [n for n in stored if n not in mapping and not n.endswith(_IGNORED_SUFFIXES)]
    report = LoadingReport(
        missing=sorted(set(own) - set(mapping.values()) - tied),
        unexpected=sorted(n for n in leftover if not _is_alias(n, stored, by_target)),
    )
    if report.missing:
        logger.warning("%s: %d weights not in %s, left freshly initialised: %s", type(model).__name__,
                       len(report.missing), path.name, _summarise(report.missing))
    if report.unexpected:
        logger.warning("%s: %d weights in %s not used: %s", type(model).__name__, len(report.unexpected),
                       path.name, _summarise(report.unexpected))
    return report


def _is_alias(name: str, stored: dict[str, torch.Tensor], by_target: dict[str, str]) -> bool:
    """A second stored copy of a tensor already loaded under another name (transformers' decoder.bias)."""
    target = match_names([name], set(by_target)).get(name)
    return target is not None and torch.equal(stored[name], stored[by_target[target]])


def _summarise(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")


def save_model(model: nn.Module, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (tied copies left out, as transformers does), atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tied = tied_names(model)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if k not in tied}
    write_atomic(folder / SAFETENSORS_FILE, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    write_text_atomic(folder / CONFIG_FILE, model.config.to_json_string(architectures=[type(model).__name__]))
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
