"""What each kernel lets a token attend to, as an n × n matrix for the learner (``bertkit explain attention-cost``).

Every kernel is linear in the values, so feeding V = I (the identity, one column per position) returns the
kernel's *effective* attention matrix: row i holds the weight token i gives every position. Full attention gives
softmax(QKᵀ/√d); local + global a band with full [CLS] row and column; LSH the blocks its sorted buckets allow;
Linformer the low-rank mixture P·F; Performer a smooth approximation of full attention.
"""

from __future__ import annotations

import torch

from ...config import BertConfig
from ..kernels import explicit_attention
from . import build_kernel


def effective_attention(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, config: BertConfig
                        ) -> torch.Tensor:
    """(batch, heads, n, n) weights of ``config.attention`` for these queries and keys (V = identity)."""
    batch, heads, n, _ = q.shape
    identity = torch.eye(n, dtype=q.dtype).expand(batch, heads, n, n)
    kernel = build_kernel(config)
    if kernel is None:
        return explicit_attention(q, k, identity, mask, 0.0)[1]
    with torch.no_grad():
        return kernel.eval()(q, k, identity, mask, 0.0)[0]
