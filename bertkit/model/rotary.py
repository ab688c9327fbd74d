"""Rotary position embeddings (RoPE; Su et al. 2021, RoFormer): each query and key is rotated by its position.

Features 2i and 2i + 1 of a head form a pair (RoFormer's interleaved layout) turned by the angle p·θ_i at position
p, θ_i = base^(−2i / d), d = ``rotary_dim``; features past d are left as they are (partial rotary). A rotation
keeps lengths and R(p)ᵀR(p') = R(p' − p), so q_p·k_p' depends on the distance p' − p only: relative positions with
nothing added to the scores, and any kernel that takes q and k works unchanged. ``rotary_value`` rotates the
values too (RoFormer's option). While decoding, new positions start after the cached ones, whose keys are stored
already rotated.

Angles are computed in float64 from the formula, or read from a fixed table (RoFormer's ``encoder.embed_positions``:
sines in the first half of the columns, cosines in the second) when the model has one.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from ..config import BertConfig


def rotary_angles(start: int, length: int, dim: int, base: float) -> torch.Tensor:
    """(length, dim / 2) float64: angle p·base^(−2i / dim) of pair i at positions start … start + length − 1."""
    position = torch.arange(start, start + length, dtype=torch.float64)
    frequency = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return position[:, None] * frequency[None, :]


@lru_cache(maxsize=16)
def cos_sin_of(start: int, length: int, dim: int, base: float, device: torch.device, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of :func:`rotary_angles`, on ``device`` in ``dtype``: computed once in float64 on the CPU (far
    positions keep their precision; some devices have no float64), then shared by every layer of the forward.
    Made outside inference mode, so that a training step may reuse what an inference call cached."""
    with torch.inference_mode(False):
        angle = rotary_angles(start, length, dim, base)
        return angle.cos().to(device, dtype), angle.sin().to(device, dtype)


def rotary_table(positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(positions, dim) float32: sin of every pair's angle, then cos (RoFormer's ``embed_positions`` layout)."""
    angle = rotary_angles(0, positions, dim, base)
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (2i, 2i + 1) of the first 2·cos.shape[-1] features of (…, seq, head_size) ``x`` by the
    (seq, pairs) angles whose cos / sin are given: (a, b) → (a cos − b sin, b cos + a sin)."""
    width = 2 * cos.shape[-1]
    pairs = x[..., :width].unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    turned = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)
    return turned if width == x.shape[-1] else torch.cat([turned, x[..., width:]], dim=-1)


class RotaryTable(nn.Module):
    """RoFormer's fixed sinusoid table (``encoder.embed_positions``): (max_position_embeddings, head_size), a
    parameter that is never trained, kept so that folders load and save one to one."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.base = config.rotary_base
        self.weight = nn.Parameter(rotary_table(config.max_position_embeddings, config.head_size, self.base),
                                   requires_grad=False)

    @torch.no_grad()
    def init_fixed_weights(self) -> None:
        """The table is the formula's, not random (re-applied after any initialisation)."""
        self.weight.copy_(rotary_table(*self.weight.shape, self.base))


class RotaryPositions(nn.Module):
    """The rotary scheme of one attention block (no weights): rotates q, k (and v) of new positions."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dim = config.rotary_dim or config.head_size
        self.base = config.rotary_base
        self.rotate_values = config.rotary_value

    def use_table(self, table: RotaryTable) -> None:
        """Read the angles from ``table`` (owned and saved by the encoder) instead of the formula."""
        if table.weight.shape[1] != self.dim:
            raise ValueError(f"a rotary table of width {table.weight.shape[1]} cannot rotate {self.dim} features")
        object.__setattr__(self, "table", table)  # not a submodule: the encoder's state dict holds it once

    def cos_sin(self, start: int, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(length, dim / 2) cos and sin of positions start … start + length − 1, in ``like``'s dtype."""
        table = self.__dict__.get("table")
        if table is None:
            return cos_sin_of(start, length, self.dim, self.base, like.device, like.dtype)
        if start + length > table.weight.shape[0]:
            raise ValueError(f"input reaches position {start + length} but the model's rotary table has "
                             f"{table.weight.shape[0]} positions (max_position_embeddings); truncate it")
        sin, cos = table.weight[start: start + length].to(like.dtype).chunk(2, dim=-1)
        return cos, sin

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k (and, with ``rotary_value``, v) of (batch, heads, seq, head_size), rotated as positions
        ``start`` … ``start + seq − 1`` (``start``: positions already cached)."""
        cos, sin = self.cos_sin(start, q.shape[-2], q)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return q, k, rotate(v, cos, sin) if self.rotate_values else v
