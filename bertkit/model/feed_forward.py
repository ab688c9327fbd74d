"""The feed-forward block's first half: expand to ``intermediate_size``, then the activation — a module of its own,
never inside the projection, so that replacing ``intermediate.dense`` by name (an adapter) changes exactly the
projection. The second half (project back, dropout, residual, LayerNorm) is an ``attention.ResidualOutput``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import BertConfig
from . import kernels
from .dropout import Dropout

# config.json's ``hidden_act`` → the module (transformers' names; the tanh GELU variants agree to float rounding)
ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "gelu_fast": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
    "silu": lambda: nn.SiLU(),
    "swish": lambda: nn.SiLU(),
    "tanh": lambda: nn.Tanh(),
}


def activation(name: str) -> nn.Module:
    """A fresh activation module for a ``hidden_act`` name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; bertkit knows {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class Intermediate(nn.Module):
    """``intermediate_act_fn(dense(x))``: the expansion and its activation."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.use_bias)
        self.intermediate_act_fn = activation(config.hidden_act)
        # BART / Marian drop out the activation too; None keeps BERT's module tree (and its fused kernels) as it was
        self.dropout = Dropout(config.activation_dropout) if config.activation_dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = kernels.linear_activation(self.dense, self.intermediate_act_fn, x)
        return x if self.dropout is None else self.dropout(x)


class GatedIntermediate(Intermediate):
    """``intermediate_act_fn(dense(x)) ⊙ gate(x)``: T5 v1.1's gated GELU (``wi_0``, ``wi_1``). A class of its own,
    so the fused feed-forward kernel (which knows one projection) is never taken for it."""

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.gate = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.use_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = kernels.linear_activation(self.dense, self.intermediate_act_fn, x) * kernels.linear(self.gate, x)
        return x if self.dropout is None else self.dropout(x)
