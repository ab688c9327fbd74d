"""BERT-flow (Li et al. 2020, arXiv:2011.05864): a normalising flow that maps sentence vectors to a standard Gaussian.

Like whitening, the flow undoes the anisotropy of raw BERT vectors, but it is invertible and non-linear: a stack of
Glow steps (Kingma & Dhariwal 2018), each an actnorm (a per-dimension affine map, initialised from the data), an
invertible linear map (Glow's 1×1 convolution on a vector, kept as W = P·L·(U + diag s) so that log|det W| = Σ log|s|)
and an affine coupling layer (half of the dimensions scaled and shifted by a small network of the other half).
It is fitted by maximum likelihood, log p(x) = log N(f(x); 0, I) + log|det ∂f/∂x|, and the latent f(x) is the vector.

In a model folder the flow is a module of its own (``N_Flow/``: ``config.json`` + ``model.safetensors``), listed in
``modules.json`` as ``bertkit.encoding.Flow`` just before Normalize, the way whitening is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..checkpoint import find_weights, read_state_dict, save_tensors, write_json
from ..training.threads import cpu_threads

LOG_2PI = math.log(2 * math.pi)


class ActNorm(nn.Module):
    """``z = (x + bias) · exp(log_scale)`` per dimension; set from the data so that z starts with mean 0, variance 1."""

    def __init__(self, dimension: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(dimension))
        self.log_scale = nn.Parameter(torch.zeros(dimension))

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Glow's data-dependent initialisation from a batch ``x``."""
        self.bias.copy_(-x.mean(dim=0))
        self.log_scale.copy_(-x.std(dim=0).clamp(min=1e-6).log())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (x + self.bias) * self.log_scale.exp(), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * (-self.log_scale).exp() - self.bias


class InvertibleLinear(nn.Module):
    """Glow's invertible 1×1 convolution on vectors, ``z = x Wᵀ`` with W = P·L·(U + diag(sign · exp(log_s)))."""

    def __init__(self, dimension: int, generator: torch.Generator):
        super().__init__()
        # A random rotation to start from: it mixes the dimensions the couplings split, and has log|det| = 0.
        rotation = torch.linalg.qr(torch.randn(dimension, dimension, generator=generator, dtype=torch.float64))[0]
        permutation, lower, upper = torch.linalg.lu(rotation)
        diagonal = torch.diagonal(upper)
        # P as the row each row of L·U moves to: indexing is a d-fold cheaper matmul, and a smaller file
        self.register_buffer("permutation", permutation.argmax(dim=1))
        self.register_buffer("sign", diagonal.sign().float())
        self.lower = nn.Parameter(torch.tril(lower, -1).float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(diagonal.abs().log().float())

    def weight(self) -> torch.Tensor:
        """W, from its factors (only the strict triangles of ``lower`` / ``upper`` count)."""
        eye = torch.eye(len(self.log_s), dtype=self.log_s.dtype, device=self.log_s.device)
        lower = torch.tril(self.lower, -1) + eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign * self.log_s.exp())
        return (lower @ upper)[self.permutation]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x @ self.weight().T, self.log_s.sum().expand(x.shape[0])

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.weight(), z.T).T


class AffineCoupling(nn.Module):
    """``(a, b) ↦ (a, b · exp(s(a)) + t(a))``: a triangular Jacobian whose log-determinant is Σ s(a)."""

    def __init__(self, dimension: int, hidden: int):
        super().__init__()
        self.split = dimension // 2
        self.net = nn.Sequential(nn.Linear(self.split, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * (dimension - self.split)))
        # Zero output: each coupling starts as the identity (Glow's choice), so the untrained flow is linear.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log-scale (bounded by tanh to (−1, 1), which keeps early steps stable) and shift from ``a``."""
        raw, shift = self.net(a).chunk(2, dim=-1)
        return torch.tanh(raw), shift

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x[:, : self.split], x[:, self.split:]
        log_scale, shift = self.scale_shift(a)
        return torch.cat([a, b * log_scale.exp() + shift], dim=-1), log_scale.sum(dim=-1)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        a, b = z[:, : self.split], z[:, self.split:]
        log_scale, shift = self.scale_shift(a)
        return torch.cat([a, (b - shift) * (-log_scale).exp()], dim=-1)


class Flow(nn.Module):
    """``steps`` Glow steps (actnorm → invertible linear → affine coupling) on ``dimension``-d vectors."""

    def __init__(self, dimension: int, steps: int = 4, hidden: int = 256, seed: int = 0):
        super().__init__()
        if not isinstance(dimension, int) or dimension < 2:
            raise ValueError(f"a flow needs vectors of at least 2 dimensions (a coupling splits them), got {dimension}")
        if not isinstance(steps, int) or steps < 1 or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"steps and hidden must be positive integers, got steps={steps!r}, hidden={hidden!r}")
        self.dimension, self.steps, self.hidden, self.seed = dimension, steps, hidden, seed
        generator = torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList()
        # nn.Linear draws its start from the global stream: seed a copy of it, leaving the caller's untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for _ in range(steps):
                self.layers.extend([ActNorm(dimension), InvertibleLinear(dimension, generator),
                                    AffineCoupling(dimension, hidden)])

    @property
    def in_features(self) -> int:
        return self.dimension

    @property
    def out_features(self) -> int:
        return self.dimension

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(latent z, log|det ∂z/∂x| per row) of vectors ``x`` (n, d)."""
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, layer_logdet = layer(x)
            logdet = logdet + layer_logdet
        return x, logdet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The latent vectors: what the encoder's pipeline passes on."""
        dtype = x.dtype
        return self.transform(x.to(self.layers[0].bias.dtype))[0].to(dtype)

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        """Latent vectors back to sentence vectors."""
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the rows of ``x`` under the flow, in nats per dimension."""
        z, logdet = self.transform(x)
        log_prob = -0.5 * (z.pow(2).sum(dim=-1) + self.dimension * LOG_2PI) + logdet
        return -log_prob.mean() / self.dimension

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Set each actnorm from the vectors that reach it (data-dependent initialisation)."""
        for layer in self.layers:
            if isinstance(layer, ActNorm):
                layer.initialise(x)
            x = layer(x)[0]

    def extra_repr(self) -> str:
        return f"dimension={self.dimension}, steps={self.steps}, hidden={self.hidden}"

    def config(self) -> dict[str, int]:
        """What ``config.json`` holds: enough to rebuild the module before its weights are read."""
        return {"in_features": self.dimension, "out_features": self.dimension, "steps": self.steps,
                "hidden": self.hidden}

    @classmethod
    def load(cls, folder: Path) -> Flow:
        """Read a flow folder; weights that disagree with its config are a clear error."""
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        try:
            flow = cls(int(config["in_features"]), int(config["steps"]), int(config["hidden"]))
        except KeyError as missing:
            raise ValueError(f"{folder}/config.json lacks {missing}") from None
        if config.get("out_features", flow.dimension) != flow.dimension:
            raise ValueError(f"{folder}/config.json declares {config['in_features']} → {config['out_features']} "
                             "dimensions; a flow keeps the dimension")
        state, expected = read_state_dict(find_weights(folder)), flow.state_dict()
        problems = [f"{k} is missing" for k in expected if k not in state]
        problems += [f"{k} has shape {tuple(state[k].shape)}, the config says {tuple(v.shape)}"
                     for k, v in expected.items() if k in state and state[k].shape != v.shape]
        if problems:
            raise ValueError(f"the flow weights in {folder} do not match its config.json: {'; '.join(problems)}")
        flow.load_state_dict({k: state[k] for k in expected})
        return flow.eval()

    def save(self, folder: Path) -> None:
        """``config.json`` and ``model.safetensors``, each written atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "config.json", self.config())
        save_tensors(self.state_dict(), folder)


def _checked_vectors(vectors: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A float32 matrix with more rows than columns (a d-dimensional Gaussian needs more than d samples)."""
    x = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"a flow is fitted on a matrix of vectors (n, d), got shape {tuple(x.shape)}")
    n, d = x.shape
    if n <= d:
        raise ValueError(f"a flow needs more vectors than dimensions: got {n} vectors of dimension {d}; fit it on at "
                         f"least {d + 1} texts")
    if not torch.isfinite(x).all():
        raise ValueError("the vectors hold NaN or infinite values")
    return x


def fit_flow(vectors: np.ndarray | torch.Tensor, steps: int = 4, hidden: int = 256, epochs: int = 50,
             batch_size: int = 128, lr: float = 1e-3, holdout: float = 0.1, seed: int = 0,
             progress: bool = False, threads: int | None = 1) -> Flow:
    """Fit a flow on ``vectors`` (n, d) by maximum likelihood with Adam; returns the state of the epoch with the
    lowest negative log-likelihood on the held-out ``holdout`` share of the rows (all rows when 0).

    ``threads``: CPU threads for the fit (None: torch's setting). One by default: the matrices are small, and on a
    busy 2-core machine two threads waiting on each other made an update of a 384-d flow take over 20 s (one thread:
    0.06 s of CPU)."""
    with cpu_threads(threads):
        return _fit(_checked_vectors(vectors), steps, hidden, epochs, batch_size, lr, holdout, seed, progress)


def _fit(x: torch.Tensor, steps: int, hidden: int, epochs: int, batch_size: int, lr: float, holdout: float,
         seed: int, progress: bool) -> Flow:
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be a share in [0, 1), got {holdout!r}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"epochs and batch_size must be positive and lr above 0, got {epochs}, {batch_size}, {lr}")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    held = int(len(x) * holdout)
    train, check = x[order[held:]], x[order[:held]] if held else x[order]
    flow = Flow(x.shape[1], steps, hidden, seed)
    flow.initialise(train)
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    best = (float(flow.nll(check).detach()), {k: v.clone() for k, v in flow.state_dict().items()})
    bar = tqdm(range(epochs), desc="fitting the flow", unit="epoch", disable=not progress)
    for _ in bar:
        flow.train()
        for rows in torch.randperm(len(train), generator=generator).split(batch_size):
            loss = flow.nll(train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            score = float(flow.nll(check))
        if score < best[0]:
            best = (score, {k: v.clone() for k, v in flow.state_dict().items()})
        bar.set_postfix(nll=f"{score:.3f}", best=f"{best[0]:.3f}")
    flow.load_state_dict(best[1])
    return flow.eval()


__all__ = ["Flow", "fit_flow"]
