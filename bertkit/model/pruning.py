"""Attention-head pruning: which heads matter (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"), and
removing the others for real — Q, K, V lose those heads' rows, the output projection their columns.

- :func:`head_importance`: |∂L/∂ξ_h| summed over a data set, where ξ_h gates head h's context (ξ = 1: the model
  as it is); a gate is applied by a forward hook on each layer's ``attention.self``, so the blocks stay unchanged.
- :func:`prune_heads`: transformers' ``prune_heads(model, {layer: [heads]})`` semantics (head numbers are those of
  the unpruned model; pruning a head twice is a no-op); the removed heads are kept in ``model.pruned_heads``.
- a pruned model's ``save_pretrained`` writes ``pruned_heads`` in config.json (transformers' field) and every
  ``from_pretrained`` builds the model, removes those heads, then loads (``load_pruned(folder)`` too);
  :func:`unpruned_copy` gives the full-shape model with those heads zeroed (equal outputs), for tools that
  expect every layer to have all its heads (transformers 5 dropped head pruning).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoint
from ..atomic import write_text_atomic
from ..config import BertConfig


def _layers(model: nn.Module) -> nn.ModuleList:
    """The encoder layers of a bertkit model (bare encoder or with a head); refuse what cannot be pruned."""
    encoder = getattr(model, "base_model", model)
    config: BertConfig = encoder.config
    if config.num_hidden_groups is not None:
        raise ValueError("ALBERT shares layers between steps: its heads cannot be pruned one layer at a time")
    if config.attention != "full" or config.position_embedding_type == "relative_bias":
        raise ValueError("head pruning needs plain softmax attention without a per-head position bias "
                         f"(this model: attention={config.attention!r}, positions={config.position_embedding_type!r})")
    return encoder.encoder.layer


def pruned_heads(model: nn.Module) -> dict[int, list[int]]:
    """Heads removed so far, per layer, numbered as in the unpruned model."""
    return {layer: sorted(heads) for layer, heads in getattr(model, "pruned_heads", {}).items() if heads}


def heads_per_layer(model: nn.Module) -> list[int]:
    """How many heads each layer has now."""
    return [layer.attention.self.num_heads for layer in _layers(model)]


@contextmanager
def head_gates(model: nn.Module, gates: torch.Tensor):
    """Within the block, the j-th remaining head of layer i has its context multiplied by ``gates[i, j]``."""
    layers = _layers(model)
    handles = []
    for index, layer in enumerate(layers):
        attention = layer.attention.self

        def gate(module: nn.Module, inputs: Any, output: tuple, index: int = index) -> tuple:
            context, probs = output
            batch, seq, _ = context.shape
            heads = module.num_heads
            scaled = context.view(batch, seq, heads, -1) * gates[index, :heads].to(context.dtype)[:, None]
            return scaled.reshape(batch, seq, -1), probs

        handles.append(attention.register_forward_hook(gate))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def head_importance(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                    loss_fn: Callable[[nn.Module, dict[str, torch.Tensor]], torch.Tensor],
                    normalize: bool = True) -> torch.Tensor:
    """(layers, heads) importance Σ over batches of |∂loss/∂ξ|, by the unpruned model's head numbers (NaN for
    heads already pruned). ``normalize`` divides each layer's scores by their L2 norm, as Michel et al. do before
    ranking heads across layers."""
    counts = heads_per_layer(model)
    dtype = next(model.parameters()).dtype
    gates = torch.ones(len(counts), max(counts), dtype=dtype, requires_grad=True)
    total = torch.zeros_like(gates)
    was_training = model.training
    model.eval()  # no dropout: the importance of the model as it predicts
    try:
        with head_gates(model, gates):
            for batch in batches:
                loss = loss_fn(model, batch)
                (grad,) = torch.autograd.grad(loss, gates)
                total += grad.abs()
    finally:
        model.train(was_training)
    present = [_current_heads(model, layer) for layer in range(len(counts))]
    out = torch.full((len(counts), max(len(p) + len(getattr(model, "pruned_heads", {}).get(i, ())) for i, p in
                                       enumerate(present))), float("nan"), dtype=dtype)
    for layer, heads in enumerate(present):
        scores = total[layer, :len(heads)]
        if normalize:
            scores = scores / scores.norm().clamp(min=1e-20)
        out[layer, heads] = scores
    return out.detach()


def _current_heads(model: nn.Module, layer: int) -> list[int]:
    """The original numbers of layer ``layer``'s remaining heads, in their order in the weights."""
    removed = set(getattr(model, "pruned_heads", {}).get(layer, ()))
    total = _layers(model)[layer].attention.self.num_heads + len(removed)
    return [h for h in range(total) if h not in removed]


def _keep_rows(linear: nn.Linear, rows: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[rows].clone())
    if linear.bias is not None:
        linear.bias = nn.Parameter(linear.bias.detach()[rows].clone())
    linear.out_features = len(rows)


def _keep_columns(linear: nn.Linear, columns: torch.Tensor) -> None:
    linear.weight = nn.Parameter(linear.weight.detach()[:, columns].clone())
    linear.in_features = len(columns)


def prune_heads(model: nn.Module, heads: dict[int, Iterable[int]]) -> nn.Module:
    """Remove heads ``{layer: [head, …]}`` (numbers of the unpruned model) in place; returns the model."""
    layers = _layers(model)
    record: dict[int, set[int]] = {k: set(v) for k, v in getattr(model, "pruned_heads", {}).items()}
    plan = {}
    for layer, chosen in heads.items():
        layer = int(layer)
        if not 0 <= layer < len(layers):
            raise ValueError(f"layer {layer} is out of range: the model has layers 0 … {len(layers) - 1}")
        present = _current_heads(model, layer)
        total = len(present) + len(record.get(layer, ()))
        chosen = {int(h) for h in chosen}
        bad = sorted(h for h in chosen if not 0 <= h < total)
        if bad:
            raise ValueError(f"layer {layer} has heads 0 … {total - 1}; cannot prune {bad}")
        remove = chosen - record.get(layer, set())
        if remove and len(remove) >= len(present):
            raise ValueError(f"pruning heads {sorted(chosen)} would leave layer {layer} without any head; keep at "
                             "least one")
        if remove:
            plan[layer] = (present, remove)
    for layer, (present, remove) in plan.items():
        attention = layers[layer].attention
        size = attention.self.head_size
        kept = [i for i, h in enumerate(present) if h not in remove]
        index = torch.tensor([i * size + j for i in kept for j in range(size)], dtype=torch.long)
        for linear in (attention.self.query, attention.self.key, attention.self.value):
            _keep_rows(linear, index)
        _keep_columns(attention.output.dense, index)
        attention.self.num_heads = len(kept)
        record.setdefault(layer, set()).update(remove)
    model.pruned_heads = {k: sorted(v) for k, v in sorted(record.items()) if v}
    return model


def least_important(importance: torch.Tensor, count: int, model: nn.Module) -> dict[int, list[int]]:
    """The ``count`` least important of the remaining heads (``importance`` by original head numbers, as
    :func:`head_importance` gives it), never a layer's last one."""
    scores = [(float(importance[layer, head]), layer, head) for layer in range(importance.shape[0])
              for head in _current_heads(model, layer)]
    left = {layer: len(_current_heads(model, layer)) for layer in range(importance.shape[0])}
    chosen: dict[int, list[int]] = {}
    for _, layer, head in sorted(scores):
        if sum(len(v) for v in chosen.values()) == count:
            break
        if left[layer] > 1:
            chosen.setdefault(layer, []).append(head)
            left[layer] -= 1
    return chosen


def record_pruned_heads(model: nn.Module, folder: str | os.PathLike) -> None:
    """Add the model's ``pruned_heads`` to a saved folder's config.json (transformers' field: layer → head numbers),
    so every loader builds the pruned shapes again; nothing to do for an unpruned model."""
    heads = pruned_heads(model)
    if not heads:
        return
    path = Path(folder) / checkpoint.CONFIG_FILE
    values = json.loads(path.read_text(encoding="utf-8"))
    values["pruned_heads"] = {str(k): v for k, v in heads.items()}
    write_text_atomic(path, json.dumps(values, indent=2) + "\n")


def stored_pruned_heads(folder: str | os.PathLike) -> dict[int, list[int]]:
    """The heads a saved folder's config.json says were removed (empty for an unpruned folder or none readable)."""
    path = Path(folder) / checkpoint.CONFIG_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # the loader reports a missing or broken config.json itself
    heads = values.get("pruned_heads") if isinstance(values, dict) else None
    return {int(k): list(v) for k, v in (heads or {}).items() if v}


def config_of_pruned(config_class: type, folder: str | os.PathLike) -> BertConfig:
    """A pruned folder's config (its ``pruned_heads`` left out: the loader prunes the built model by them)."""
    path = Path(folder) / checkpoint.CONFIG_FILE
    values = json.loads(path.read_text(encoding="utf-8"))
    values.pop("pruned_heads", None)
    try:
        return config_class.from_dict(values)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from None


def save_pruned(model: nn.Module, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
    """``save_pretrained``, with ``pruned_heads`` in config.json (bertkit's models write it themselves)."""
    folder = Path(model.save_pretrained(folder, tokenizer=tokenizer))
    record_pruned_heads(model, folder)
    return folder


def load_pruned(folder: str | os.PathLike | type, model_class: Any = None) -> nn.Module:
    """Load a pruned folder with ``model_class`` (default: ``AutoModel``, by its ``model_type``); every
    ``from_pretrained`` reads ``pruned_heads`` the same way. The older ``load_pruned(model_class, folder)`` works."""
    if isinstance(folder, type):
        folder, model_class = model_class, folder
    if model_class is None:
        from .auto import AutoModel  # auto imports every architecture, which import this module

        model_class = AutoModel
    return model_class.from_pretrained(folder)


def unpruned_copy(model: nn.Module) -> nn.Module:
    """A full-shape copy whose pruned heads have zero weights: every layer has all its heads again and the outputs
    are unchanged (a zero value projection gives the head a zero context, whatever it attends to)."""
    full = type(model)(copy.deepcopy(model.config))
    target = dict(full.named_parameters())
    for name, tensor in model.state_dict().items():
        if name in target and target[name].shape == tensor.shape:
            target[name].data.copy_(tensor)
    layers = _layers(full)
    for index, layer in enumerate(_layers(model)):
        present = _current_heads(model, index)
        size = layer.attention.self.head_size
        rows = torch.tensor([h * size + j for h in present for j in range(size)], dtype=torch.long)
        new = layers[index].attention
        for name in ("query", "key", "value"):
            old_linear, new_linear = getattr(layer.attention.self, name), getattr(new.self, name)
            new_linear.weight.data.zero_()
            new_linear.weight.data[rows] = old_linear.weight.data
            if new_linear.bias is not None:
                new_linear.bias.data.zero_()
                new_linear.bias.data[rows] = old_linear.bias.data
        new.output.dense.weight.data.zero_()
        new.output.dense.weight.data[:, rows] = layer.attention.output.dense.weight.data
    return full.eval()
