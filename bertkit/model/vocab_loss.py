"""Cross-entropy over the vocabulary without materialising the logits: the masked-LM loss, a slice at a time.

Why: with ~600 masked positions and a 30,522-token vocabulary the logits are 73 MB in fp32, and autograd keeps
several tensors that size alive (logits, log-softmax, their gradients) — the largest activations of a small
BERT's pretraining step. Here the projection runs on one slice of the vocabulary at a time (~2M logits): the
forward keeps a running log-sum-exp per row (the online softmax of FlashAttention), the target logit and the
argmax; the backward recomputes each slice's logits to form ``softmax − one_hot`` and writes that slice of the
weight gradient. That costs one more vocabulary GEMM and saves the memory. The loss and the gradients equal
``F.cross_entropy(h @ Wᵀ + b, labels)``.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100
SLICE_ELEMENTS = 1 << 21  # logits per slice: 8 MB in fp32


def vocab_slices(rows: int, vocab_size: int) -> list[slice]:
    """Consecutive slices of the vocabulary, each ≤ ~``SLICE_ELEMENTS`` logits for ``rows`` rows (a power-of-two
    width, so that few distinct GEMM shapes occur)."""
    width = 1 << max(8, (SLICE_ELEMENTS // max(rows, 1)).bit_length() - 1)
    return [slice(start, min(start + width, vocab_size)) for start in range(0, vocab_size, width)]


def _slice_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, tokens: slice) -> torch.Tensor:
    """fp32 (or wider) logits of every row for one slice of the vocabulary; the GEMM runs in ``hidden``'s dtype
    (bf16 under autocast, like ``F.linear`` there), the weight slice cast to it on the way."""
    wide = torch.promote_types(hidden.dtype, torch.float32)
    partial = torch.addmm(bias[tokens].to(hidden.dtype), hidden, weight[tokens].to(hidden.dtype).t())
    return partial.to(wide)


class _VocabCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weightᵀ + bias`` against ``labels``, and each row's argmax.

    ``weight`` and ``bias`` stay in their own (master) dtype and are cast slice by slice, so their gradients come
    back in that dtype without a round trip through bf16.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels):
        rows = len(hidden)
        wide = torch.promote_types(hidden.dtype, torch.float32)
        running_max = torch.full((rows,), -torch.inf, dtype=wide, device=hidden.device)
        running_sum = torch.zeros(rows, dtype=wide, device=hidden.device)
        target_logit = torch.zeros(rows, dtype=wide, device=hidden.device)
        best_logit = torch.full((rows,), -torch.inf, dtype=wide, device=hidden.device)
        predictions = torch.zeros(rows, dtype=torch.long, device=hidden.device)
        for tokens in vocab_slices(rows, len(weight)):
            logits = _slice_logits(hidden, weight, bias, tokens)
            slice_best, slice_argmax = logits.max(dim=-1)
            better = slice_best > best_logit
            best_logit = torch.where(better, slice_best, best_logit)
            predictions = torch.where(better, slice_argmax + tokens.start, predictions)
            inside = (labels >= tokens.start) & (labels < tokens.stop)
            local = (labels - tokens.start).clamp(0, tokens.stop - tokens.start - 1)
            target_logit += logits.gather(1, local[:, None])[:, 0] * inside
            new_max = torch.maximum(running_max, slice_best)
            running_sum = running_sum * (running_max - new_max).exp() + logits.sub_(new_max[:, None]).exp_().sum(-1)
            running_max = new_max
        log_sum_exp = running_sum.log() + running_max
        valid = labels != IGNORE_INDEX
        count = valid.sum()
        loss = ((log_sum_exp - target_logit) * valid).sum() / count  # nan when no row has a label, as F.cross_entropy
        ctx.save_for_backward(hidden, weight, bias, labels, log_sum_exp, count)
        ctx.mark_non_differentiable(predictions)
        return loss, predictions

    @staticmethod
    def backward(ctx, grad_loss, _grad_predictions):
        hidden, weight, bias, labels, log_sum_exp, count = ctx.saved_tensors
        wide = log_sum_exp.dtype
        grad_hidden = torch.zeros(hidden.shape, dtype=wide, device=hidden.device)
        grad_weight = torch.empty(weight.shape, dtype=torch.promote_types(weight.dtype, wide), device=weight.device)
        grad_bias = torch.empty(bias.shape, dtype=grad_weight.dtype, device=bias.device)
        valid = labels != IGNORE_INDEX
        row_scale = (valid * (grad_loss / count)).to(wide)[:, None]
        for tokens in vocab_slices(len(hidden), len(weight)):
            # d loss / d logits = (softmax − one_hot) / count, zero on unlabelled rows
            grad_logits = _slice_logits(hidden, weight, bias, tokens).sub_(log_sum_exp[:, None]).exp_()
            inside = valid & (labels >= tokens.start) & (labels < tokens.stop)
            local = (labels - tokens.start).clamp(0, tokens.stop - tokens.start - 1)
            grad_logits.scatter_add_(1, local[:, None], -inside.to(wide)[:, None])
            grad_logits.mul_(row_scale)
            grad_bias[tokens] = grad_logits.sum(0)
            grad_logits = grad_logits.to(hidden.dtype)  # the GEMMs below run in the forward's dtype
            weight_slice = weight[tokens].to(hidden.dtype)
            grad_hidden += grad_logits @ weight_slice
            grad_weight[tokens] = grad_logits.t() @ hidden
        return grad_hidden.to(hidden.dtype), grad_weight.to(weight.dtype), grad_bias.to(bias.dtype), None


def vocab_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of the (rows, vocab) logits ``hidden @ weightᵀ + bias`` and their argmax, slice by slice.

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
        return _VocabCrossEntropy.apply(hidden, weight, bias, labels)
