"""Cross-entropy over the vocabulary without materialising the logits: the masked-LM loss, a few rows at a time.

Why: with ~600 masked positions and a 30,522-token vocabulary the logits are 73 MB in fp32, and autograd keeps
several tensors that size alive (logits, log-softmax, their gradients) — the largest activations of a small
BERT's pretraining step. Here the projection runs on ``chunk_rows`` rows at a time; the forward keeps only each
row's log-sum-exp, and the backward recomputes the chunk's logits to form ``softmax − one_hot``. That costs one
more vocabulary GEMM and saves the memory. The loss and gradients equal ``F.cross_entropy(h @ Wᵀ + b, labels)``.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100


def _chunk_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Logits of some rows in fp32 or wider (the GEMM runs in the inputs' dtype, bf16 under autocast)."""
    return (hidden @ weight.t()).to(torch.promote_types(hidden.dtype, torch.float32)) + bias


class _ChunkedVocabCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weightᵀ + bias`` against ``labels``, and each row's argmax.

    ``weight`` is cast to ``hidden``'s dtype inside, so its gradient comes back in its own (master) dtype
    without a round trip through bf16.
    """

    @staticmethod
    def forward(ctx, hidden, master_weight, bias, labels, chunk_rows):
        weight = master_weight.to(hidden.dtype)
        wide = torch.promote_types(hidden.dtype, torch.float32)
        log_sum_exp = torch.empty(len(hidden), dtype=wide, device=hidden.device)
        target_logit = torch.zeros_like(log_sum_exp)
        predictions = torch.empty(len(hidden), dtype=torch.long, device=hidden.device)
        valid = labels != IGNORE_INDEX
        for start in range(0, len(hidden), chunk_rows):
            rows = slice(start, start + chunk_rows)
            logits = _chunk_logits(hidden[rows], weight, bias)
            log_sum_exp[rows] = torch.logsumexp(logits, dim=-1)
            predictions[rows] = logits.argmax(dim=-1)
            target_logit[rows] = logits.gather(1, labels[rows].clamp(min=0)[:, None])[:, 0]
        count = valid.sum()
        loss = ((log_sum_exp - target_logit) * valid).sum() / count  # nan when no row has a label, as F.cross_entropy
        ctx.save_for_backward(hidden, master_weight, bias, labels, log_sum_exp, count)
        ctx.chunk_rows = chunk_rows
        ctx.mark_non_differentiable(predictions)
        return loss, predictions

    @staticmethod
    def backward(ctx, grad_loss, _grad_predictions):
        hidden, master_weight, bias, labels, log_sum_exp, count = ctx.saved_tensors
        weight = master_weight.to(hidden.dtype)
        grad_hidden = torch.empty_like(hidden)
        wide = log_sum_exp.dtype
        grad_weight = torch.zeros(weight.shape, dtype=torch.promote_types(master_weight.dtype, wide),
                                  device=weight.device)
        grad_bias = torch.zeros(bias.shape, dtype=wide, device=bias.device)
        scale = grad_loss / count
        for start in range(0, len(hidden), ctx.chunk_rows):
            rows = slice(start, start + ctx.chunk_rows)
            chunk_labels = labels[rows]
            valid = (chunk_labels != IGNORE_INDEX)[:, None]
            # d loss / d logits = (softmax − one_hot) / count, zero on unlabelled rows
            grad_logits = (_chunk_logits(hidden[rows], weight, bias) - log_sum_exp[rows, None]).exp_()
            grad_logits.scatter_add_(1, chunk_labels.clamp(min=0)[:, None], -valid.to(wide))
            grad_logits.mul_(valid * scale)
            grad_bias += grad_logits.sum(0)
            grad_logits = grad_logits.to(hidden.dtype)
            grad_hidden[rows] = grad_logits @ weight
            grad_weight += grad_logits.t() @ hidden[rows]
        return grad_hidden, grad_weight.to(master_weight.dtype), grad_bias.to(bias.dtype), None, None


def vocab_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor, chunk_rows: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of the (rows, vocab) logits ``hidden @ weightᵀ + bias`` and their argmax, chunk by chunk.

    Rows labelled -100 do not count. Under autocast the projection runs in the autocast dtype (the log-sum-exp in
    fp32), as ``F.linear`` followed by ``F.cross_entropy`` would.
    """
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1]:
        raise ValueError(f"expected (rows, hidden) states and (rows,) labels, got {tuple(hidden.shape)} and "
                         f"{tuple(labels.shape)}")
    device = hidden.device.type
    if torch.is_autocast_enabled(device):
        hidden = hidden.to(torch.get_autocast_dtype(device))
    with torch.autocast(device, enabled=False):
        return _ChunkedVocabCrossEntropy.apply(hidden, weight, bias, labels, chunk_rows)
