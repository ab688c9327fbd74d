"""Hugging Face model folders: read and write ``config.json`` + weights, mapping parameter names.

Each architecture names its weights its own way in transformers (``model.hf_names()``, from
``model/architectures.py``); checkpoints carry the encoder's prefix (``bert.``, ``roberta.``, …) or not (a bare
encoder saves none), and older ones call LayerNorm's parameters ``gamma``/``beta``. Loading matches each stored
tensor to the model whatever the prefix; saving writes the layout transformers itself writes.
Pickles are never trusted: ``pytorch_model.bin`` is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
_RENAMES = ((".gamma", ".weight"), (".beta", ".bias"))
# buffers some checkpoints carry, recomputed here (NEZHA's fixed relative encoding table in older saves)
_IGNORED_SUFFIXES = ("position_ids", "relative_positions_encoding.positions_encoding")


@dataclass
class LoadingReport:
    """What loading matched: tensors the model expected but the file lacked, and the reverse."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def find_weights(folder: Path) -> Path:
    """The weights file of a model folder: model.safetensors, else pytorch_model.bin."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
    for name in (SAFETENSORS_FILE, PYTORCH_FILE):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder} holds no weights: looked for {SAFETENSORS_FILE} and {PYTORCH_FILE}")


# transformers' names of the MLM head in each architecture (BERT, RoBERTa, ALBERT, DistilBERT, ELECTRA's generator)
MLM_HEAD_PREFIXES = ("cls.predictions.", "lm_head.", "predictions.", "vocab_transform.", "generator_predictions.")


def stored_names(folder: Path) -> list[str]:
    """The tensor names of a folder's weights file, without reading the tensors where the format allows."""
    path = find_weights(folder)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    return list(read_state_dict(path))


def has_mlm_head(folder: str | os.PathLike) -> bool:
    """Whether the checkpoint carries a masked-LM head (MiniLM, a sentence-embedding model, does not)."""
    return any(name.startswith(MLM_HEAD_PREFIXES) for name in stored_names(Path(folder)))


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


def match_names(stored: list[str], by_hf_name: dict[str, str], prefix: str) -> dict[str, str]:
    """Map stored tensor names to the model's names through transformers' names (``by_hf_name``: transformers'
    name → the model's), adding or dropping the encoder's ``prefix.`` as needed (a bare encoder saves none)."""
    mapping: dict[str, str] = {}
    for name in stored:
        if name.endswith(_IGNORED_SUFFIXES):
            continue
        base = _canonical(name)
        stripped = base.removeprefix(prefix + ".")
        # transformers stores the MLM bias twice (…predictions.bias / lm_head.bias and its alias decoder.bias)
        aliases = [base, f"{prefix}.{stripped}", stripped, re.sub(r"decoder\.bias$", "bias", base)]
        target = next((by_hf_name[a] for a in aliases if a in by_hf_name), None)
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


def hf_names(model: nn.Module) -> dict[str, str]:
    """The model's state-dict names → transformers' names (the same names for a model that is not bertkit's)."""
    return model.hf_names() if hasattr(model, "hf_names") else {name: name for name in model.state_dict()}


def encoder_names(model: nn.Module, names: set[str]) -> list[str]:
    """The names among ``names`` that belong to the encoder proper (embeddings and layers, not pooler or heads):
    without them a checkpoint does not hold this model at all."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    parts = ("embeddings.", "embeddings_project.", "encoder.")
    return sorted(n for n in names if n.removeprefix(prefix).startswith(parts))


def load_weights(model: nn.Module, folder: Path) -> LoadingReport:
    """Copy a folder's weights into ``model``; log missing heads and unused tensors; refuse a checkpoint that
    lacks encoder weights or has a tensor of the wrong shape, naming the tensors."""
    if hasattr(model, "load_folder"):  # a model saved as several folders (ELECTRA pretraining's two models)
        return model.load_folder(folder)
    path = find_weights(folder)
    stored = read_state_dict(path)
    if hasattr(model, "from_hf_layout"):  # tensors laid out otherwise than bertkit's (GPT-2's fused Conv1D)
        stored = model.from_hf_layout(stored)
    own = model.state_dict()
    by_hf_name = {hf: name for name, hf in hf_names(model).items()}
    mapping = match_names(list(stored), by_hf_name, getattr(model, "base_model_prefix", ""))
    for name, target in mapping.items():
        if tuple(stored[name].shape) != tuple(own[target].shape):
            raise ValueError(
                f"{path.name}: tensor {name} has shape {tuple(stored[name].shape)} but the model built from "
                f"config.json expects {tuple(own[target].shape)} for {target}; does config.json match the weights?"
            )
    fixed = {n for n, p in model.named_parameters() if not p.requires_grad}  # sinusoids: rebuilt, not loaded
    missing = sorted(set(own) - set(mapping.values()) - tied_names(model) - fixed)
    absent = encoder_names(model, set(missing))
    if absent:
        expected = [hf_names(model)[n] for n in absent]
        raise ValueError(f"{path} does not hold this {type(model).__name__}: {len(absent)} encoder weights are "
                         f"missing ({_summarise(expected)}); is it a checkpoint of another architecture?")
    model.load_state_dict({t: stored[n] for n, t in mapping.items()}, strict=False)
    by_target = {t: n for n, t in mapping.items()}
    leftover = [n for n in stored if n not in mapping and not n.endswith(_IGNORED_SUFFIXES)]
    report = LoadingReport(
        missing=missing,
        unexpected=sorted(n for n in leftover if not _is_alias(n, stored, by_target, by_hf_name, model)),
    )
    if not _quiet.get():
        log_report(model, report, path.name)
    return report


_quiet: ContextVar[bool] = ContextVar("quiet_loading", default=False)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load without logging what was missing: for a caller that fills weights in next (an adapter's head) and
    then logs what is still missing with :func:`log_report`."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def log_report(model: nn.Module, report: LoadingReport, source: str) -> None:
    """Warn about the weights ``source`` lacked (left freshly initialised) and those it held that went unused."""
    if report.missing:
        logger.warning("%s: %d weights not in %s, left freshly initialised: %s", type(model).__name__,
                       len(report.missing), source, _summarise(report.missing))
    if report.unexpected:
        logger.warning("%s: %d weights in %s not used: %s", type(model).__name__, len(report.unexpected),
                       source, _summarise(report.unexpected))


def _is_alias(name: str, stored: dict[str, torch.Tensor], by_target: dict[str, str], by_hf_name: dict[str, str],
              model: nn.Module) -> bool:
    """A second stored copy of a tensor already loaded under another name (transformers' decoder.bias)."""
    target = match_names([name], by_hf_name, getattr(model, "base_model_prefix", "")).get(name)
    return target is not None and target in by_target and torch.equal(stored[name], stored[by_target[target]])


def _summarise(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" … and {len(names) - limit} more" if len(names) > limit else "")


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented UTF-8 JSON to ``path`` atomically (a module folder's config files)."""
    write_text_atomic(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def save_tensors(state: dict[str, torch.Tensor], folder: Path) -> None:
    """Write ``state`` as ``folder/model.safetensors`` atomically (a sentence-transformers module's weights)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    write_atomic(folder / "model.safetensors", lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))


def save_model(model: nn.Module, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (tied copies left out, as transformers does), atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tied = tied_names(model)
    names = hf_names(model)
    state = {names[k]: v.detach().cpu() for k, v in model.state_dict().items() if k not in tied}
    if hasattr(model, "to_hf_layout"):
        state = model.to_hf_layout(state)
    state = {k: v.contiguous() for k, v in state.items()}
    write_atomic(folder / SAFETENSORS_FILE, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    write_text_atomic(folder / CONFIG_FILE, model.config.to_json_string(
        architectures=[getattr(model, "architecture_name", type(model).__name__)]))
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
