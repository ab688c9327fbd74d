"""Performer's FAVOR+ (Choromanski et al. 2021): softmax attention through positive orthogonal random features.

exp(q·k/√d) = E_ω[φ(q)·φ(k)] with φ(x) = exp(ωᵀx − |x|²/2)/√m (x scaled by d^-¼), ω ~ N(0, I) drawn as blocks of
orthogonal rows (lower variance than independent ones). Then attention is φ(Q) (φ(K)ᵀ V) / (φ(Q) φ(K)ᵀ 1): the
(m × d) product is formed first and the n × n matrix never is — O(n·m·d). Features are positive, so the normaliser
never cancels to zero (the trig features of Random Feature Attention can). The causal variant replaces the sums
over keys by prefix sums, taken chunk by chunk (exact within a chunk, a running state across chunks).

The features are a buffer (saved with the model, so a loaded model computes what the saved one did) and are redrawn
every ``performer_redraw`` training forward passes; evaluation never redraws. Attention dropout does not apply:
there are no probabilities to drop.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...config import BertConfig
from . import keep_keys, refuse_maps


def orthogonal_features(num_features: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(num_features, dim) rows: blocks of ``dim`` orthogonal directions, each row a Gaussian vector's length."""
    blocks = []
    for _ in range(math.ceil(num_features / dim)):
        orthonormal, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        blocks.append(orthonormal.T)
    directions = torch.cat(blocks)[:num_features]
    lengths = torch.randn(num_features, dim, generator=generator).norm(dim=1)  # as if each row were N(0, I)
    return directions * lengths[:, None]


class PerformerAttention(nn.Module):
    """FAVOR+ with ``performer_features`` features, redrawn on a schedule; ``performer_causal`` for prefix sums."""

    chunk = 128  # causal variant: positions per prefix-sum step (memory O(chunk² + m·d) per head)

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_features = config.performer_features
        self.redraw_every = config.performer_redraw
        self.causal = config.performer_causal
        self.register_buffer("projection", orthogonal_features(self.num_features, config.head_size))
        self.calls_since_redraw = 0

    @torch.no_grad()
    def redraw(self) -> None:
        """Draw new random features (in place, on the buffer's device)."""
        self.projection.copy_(orthogonal_features(*self.projection.shape).to(self.projection))
        self.calls_since_redraw = 0

    def features(self, x: torch.Tensor, keep: torch.Tensor | None, is_query: bool) -> torch.Tensor:
        """φ(x) of (batch, heads, seq, d) → (batch, heads, seq, m), scaled by a constant that cancels.

        The exponent is shifted by its maximum — per row for queries (each row's numerator and denominator share
        it), over all keys of a head for keys (every key must share it) — so exp never overflows.
        """
        x = x * x.shape[-1] ** -0.25
        logits = (x @ self.projection.to(x.dtype).T).sub_((x * x).sum(dim=-1, keepdim=True) / 2)
        if keep is not None and not is_query:  # padded keys get φ = 0
            logits = logits.masked_fill_(~keep[:, None, :, None], torch.finfo(logits.dtype).min)
        dims = (-1,) if is_query else (-2, -1)
        # in place, one (seq × m) tensor: the 1/√m factor rides in the shift (a later mul_ would break autograd)
        shift = logits.detach().amax(dim=dims, keepdim=True) + 0.5 * math.log(self.num_features)
        return logits.sub_(shift).exp_()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                dropout_prob: float, return_probs: bool = False) -> tuple[torch.Tensor, None]:
        refuse_maps("performer", return_probs)
        if self.training and self.redraw_every:
            if self.calls_since_redraw >= self.redraw_every:
                self.redraw()
            self.calls_since_redraw += 1
        keep = keep_keys(mask, "performer")
        fq, fk = self.features(q, keep, is_query=True), self.features(k, keep, is_query=False)
        if self.causal:
            numerator, denominator = causal_sums(fq, fk, v, self.chunk)
        else:
            numerator = fq @ (fk.transpose(-1, -2) @ v)  # (n, m) @ ((m, n) @ (n, d))
            denominator = fq @ fk.sum(dim=-2).unsqueeze(-1)  # (n, m) @ (m, 1)
        return numerator / denominator.clamp(min=torch.finfo(denominator.dtype).tiny), None


def causal_sums(fq: torch.Tensor, fk: torch.Tensor, v: torch.Tensor, chunk: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_{j≤i} φ(q_i)·φ(k_j) v_j and Σ_{j≤i} φ(q_i)·φ(k_j): prefix sums of φ(k)vᵀ, one chunk at a time."""
    state = fq.new_zeros(*fq.shape[:2], fq.shape[-1], v.shape[-1])  # Σ φ(k_j) v_jᵀ over earlier chunks
    total = fq.new_zeros(*fq.shape[:2], fq.shape[-1], 1)  # Σ φ(k_j) over earlier chunks
    numerators, denominators = [], []
    for start in range(0, fq.shape[2], chunk):
        qc, kc, vc = (t[:, :, start:start + chunk] for t in (fq, fk, v))
        within = (qc @ kc.transpose(-1, -2)).tril()  # keys of this chunk at or before each query
        numerators.append(qc @ state + within @ vc)
        denominators.append(qc @ total + within.sum(dim=-1, keepdim=True))
        state = state + kc.transpose(-1, -2) @ vc
        total = total + kc.sum(dim=-2).unsqueeze(-1)
    return torch.cat(numerators, dim=2), torch.cat(denominators, dim=2)
