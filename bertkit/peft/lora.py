"""LoRA (Hu et al. 2021): a frozen projection W plus a trained low-rank update ΔW = B·A, scaled by α / r.

B starts at zero, so the model starts exactly as the base model; ``merge`` folds ΔW into W for inference at no
extra cost, ``unmerge`` takes it out again. Module names are ``peft``'s (``base_layer``, ``lora_A``, ``lora_B``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..model import kernels
from ..model.dropout import drop_unscaled


class LoraLinear(nn.Module):
    """``base_layer(x) + B(A(dropout(x))) · α/r`` around a frozen ``nn.Linear`` (``lora_dropout`` holds the drop
    probability, as peft's module of that name; the forward draws the mask itself, see there)."""

    def __init__(self, base_layer: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base_layer = base_layer
        self.lora_A = nn.Linear(base_layer.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base_layer.out_features, bias=False)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()  # its p; see forward
        self.scaling = alpha / r
        self.merged = False
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # as peft: A random, B zero
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = kernels.linear(self.base_layer, x)  # the frozen base stays on the fast path
        if self.merged:
            return out
        scale = self.scaling
        if self.training and isinstance(self.lora_dropout, nn.Dropout) and self.lora_dropout.p > 0:
            # inverted dropout, its 1/keep folded into B's scale (the branch is linear): an elementwise pass over
            # x fewer each way, which at this rank costs more than the branch's two small GEMMs
            x, keep = drop_unscaled(x, self.lora_dropout.p)
            scale = scale / keep
        return out + F.linear(self.lora_A(x), self.lora_B.weight * scale)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = B·A·α/r, shaped like the base weight."""
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """W ← W + ΔW: one projection at inference."""
        if not self.merged:
            self.base_layer.weight += self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← W − ΔW: the separate update again (to train on, or to swap adapters)."""
        if self.merged:
            self.base_layer.weight -= self.delta_weight().to(self.base_layer.weight.dtype)
            self.merged = False
