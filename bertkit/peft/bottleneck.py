"""Bottleneck adapters: down-project to ``m``, non-linearity, up-project, added to the sublayer's output before the
residual connection. Houlsby et al. (2019) put one after each half of a layer; Pfeiffer et al. (2020) one after
the feed-forward half only. The up-projection starts at zero, so the model starts exactly as the base model.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model import kernels


class Bottleneck(nn.Module):
    """``up(gelu(down(x)))`` with ``up`` zero-initialised."""

    def __init__(self, width: int, size: int):
        super().__init__()
        self.down = nn.Linear(width, size)
        self.act = nn.GELU()
        self.up = nn.Linear(size, width)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class AdapterLinear(nn.Module):
    """A sublayer's output projection followed by an adapter on its output: ``y + adapter(y)``."""

    def __init__(self, base_layer: nn.Linear, size: int):
        super().__init__()
        self.base_layer = base_layer
        self.adapter = Bottleneck(base_layer.out_features, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = kernels.linear(self.base_layer, x)
        return y + self.adapter(y)
