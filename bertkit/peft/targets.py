"""Find the modules a method wraps by their names inside a layer (``query``, ``attention.output.dense``)."""

from __future__ import annotations

import re

from torch import nn

# a layer of BERT's stack (``….encoder.layer.N.``) or of ModernBERT's (``[model.]layers.N.``, at the top only: the
# encoder-decoders' ``encoder.layers`` are not encoder layers PEFT knows)
LAYER = re.compile(r"(?:(?:^|\.)encoder\.layer|^(?:model\.)?layers)\.\d+\.(.+)$")


def layer_modules(model: nn.Module) -> dict[str, tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` inside an encoder layer: full name → (name inside the layer, module)."""
    found = {}
    for name, module in model.named_modules():
        match = LAYER.search(name)
        if match and isinstance(module, nn.Linear):
            found[name] = (match.group(1), module)
    return found


def find_targets(model: nn.Module, targets: list[str] | tuple[str, ...], exact: bool = False) -> list[str]:
    """Full names of the layer projections named by ``targets``.

    As in ``peft``, a target matches a name inside the layer that equals it or ends with ``.target`` (``query``
    matches ``attention.self.query``); ``exact`` asks for the whole name inside the layer. A target that matches
    nothing is an error listing the names there are.
    """
    available = layer_modules(model)
    inner = sorted({short for short, _ in available.values()})
    chosen, unmatched = [], []
    for target in targets:
        hits = [name for name, (short, _) in available.items()
                if short == target or (not exact and short.endswith("." + target))]
        if not hits:
            unmatched.append(target)
        chosen += [h for h in hits if h not in chosen]
    if unmatched:
        raise ValueError(f"target module(s) {unmatched} match no projection of the model's layers; available: "
                         f"{inner} (or their last part, e.g. query)")
    return chosen


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where the module called ``name`` is."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
