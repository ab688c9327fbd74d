"""BERT-whitening (Su et al. 2021, arXiv:2103.15316): map sentence vectors to zero mean and identity covariance.

Raw BERT vectors crowd into a narrow cone, so their cosines say little. Whitening fits, on a corpus's vectors x,
the mean μ and W = U·Λ^-½ from the SVD of their covariance Σ = U Λ Uᵀ; then x ↦ (x − μ) W has identity covariance.
Keeping only the first k columns of W (the largest-variance directions) shortens the vectors and often helps.

In a model folder, whitening is a module of its own (``N_Whitening/``: ``config.json`` + ``model.safetensors``
holding ``mean`` and ``weight``), listed in ``modules.json`` as ``bertkit.encoding.Whitening`` just before
Normalize. bertkit runs it; sentence-transformers does not know this type and will not load such a folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import save_tensors, write_json


class Whitening(nn.Module):
    """``x ↦ (x − mean) @ weight``, with ``weight`` of shape ``(in_features, out_features)``; fixed, not trained."""

    def __init__(self, mean: torch.Tensor, weight: torch.Tensor):
        super().__init__()
        if mean.ndim != 1 or weight.ndim != 2 or weight.shape[0] != mean.shape[0]:
            raise ValueError(f"whitening needs a mean (d,) and a weight (d, k); got {tuple(mean.shape)} and "
                             f"{tuple(weight.shape)}")
        # Buffers, not parameters: fine-tuning the encoder must not move the statistics it was fitted with.
        self.register_buffer("mean", mean.float())
        self.register_buffer("weight", weight.float())

    @property
    def in_features(self) -> int:
        return self.weight.shape[0]

    @property
    def out_features(self) -> int:
        return self.weight.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) @ self.weight.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    @classmethod
    def load(cls, folder: Path) -> Whitening:
        """Read a whitening folder; sizes that disagree with its config are a clear error."""
        from ..checkpoint import find_weights, read_state_dict

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        state = read_state_dict(find_weights(folder))
        if "mean" not in state or "weight" not in state:
            raise ValueError(f"{folder} holds no whitening: its weights need 'mean' and 'weight'")
        whitening = cls(state["mean"], state["weight"])
        declared = (config.get("in_features"), config.get("out_features"))
        if declared != (whitening.in_features, whitening.out_features):
            raise ValueError(f"{folder}/config.json declares {declared[0]} → {declared[1]} dimensions, but its "
                             f"weight is {whitening.in_features} × {whitening.out_features}")
        return whitening

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", {"in_features": self.in_features, "out_features": self.out_features})
        save_tensors({"mean": self.mean, "weight": self.weight}, folder)


def fit_whitening(vectors: np.ndarray | torch.Tensor, k: int | None = None) -> Whitening:
    """Fit μ and W = U·Λ^-½ on ``vectors`` (n, d), keeping the first ``k`` dimensions (all by default)."""
    x = torch.as_tensor(np.asarray(vectors), dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"whitening is fitted on a matrix of vectors (n, d), got shape {tuple(x.shape)}")
    n, d = x.shape
    if n <= d:
        raise ValueError(f"whitening needs more vectors than dimensions to estimate a {d} × {d} covariance: got "
                         f"{n} vectors of dimension {d}; fit it on at least {d + 1} texts")
    k = d if k is None else k
    if not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"k must be between 1 and the vectors' dimension {d}, got {k!r}")
    mean = x.mean(dim=0)
    centred = x - mean
    covariance = centred.T @ centred / (n - 1)  # np.cov's estimate, as in the paper's code
    u, s, _ = torch.linalg.svd(covariance)
    # A direction with no variance at all would get an infinite scale; floor it far below any real one.
    s = s.clamp(min=float(s[0]) * 1e-12)
    weight = u[:, :k] / s[:k].sqrt()
    return Whitening(mean.float(), weight.float())
