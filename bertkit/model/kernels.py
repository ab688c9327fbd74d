"""Every speed path of the blocks, in one place; each is taken only when what it fuses is plain, else the plain math.

The blocks never call a projection as ``self.query(x)``: they call ``kernels.linear(self.query, x)`` and friends.
A kernel here fuses modules (a projection and the activation after it, the three projections of attention, the
FFN's two projections with the GELU between them) or replaces a module's own forward with a faster routine. It may
do so only when every module involved is *plain* — exactly ``nn.Linear`` / the exact-GELU module, with no hooks —
because a module replaced by name (a LoRA wrapper, an adapter, a quantized linear) must run its own ``forward``, and
a hook must see its call. Otherwise the kernel calls the modules one by one: ``activation(linear(x))``.

The paths (why each exists):
- **oneDNN inference linear** (:func:`linear`): on AMD CPUs MKL's sgemm behind ``F.linear`` takes a slower path;
  oneDNN's ``_linear_pointwise`` uses AVX-512 (~2.3× on one EPYC, ~1.1× on another). fp32, CPU, no autograd only.
- **fused GELU** (:func:`linear_activation`): the same oneDNN kernel applies the exact GELU on its output.
- **fused QKV in training** (:func:`project_qkv`): one GEMM over the concatenated Q, K, V weights — one read of the
  input and one autocast copy instead of three; pays off when a backward pass follows.
- **GELU recomputed in the backward** (:func:`feed_forward`): the FFN's widest activation is not stored.
- **fast dropout** (``dropout.py``) and **attention** (:func:`attention`): SDPA, or the explicit softmax path when
  the attention maps are asked for or when training on the CPU (whose SDPA has no fast dropout); the explicit path
  stores one probability-sized tensor.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals

from .dropout import dropout_matmul
from .linear import gelu_linear


def _onednn_linear_available() -> bool:
    """Whether this torch build has oneDNN's fused linear op (the one inductor uses on the CPU)."""
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    except (AttributeError, RuntimeError):
        return False


ONEDNN_AVAILABLE = _onednn_linear_available()
_onednn_on = ONEDNN_AVAILABLE  # switched only by onednn_linear(), so a benchmark's choice cannot leak past its block


@contextlib.contextmanager
def onednn_linear(enabled: bool) -> Iterator[None]:
    """Within the block, fp32 CPU projections without gradients run through oneDNN's fused linear (``True``, where
    this torch build has it) or MKL's GEMM, ``F.linear`` (``False``): benchmarks measure what the oneDNN path buys."""
    global _onednn_on
    previous, _onednn_on = _onednn_on, enabled and ONEDNN_AVAILABLE
    try:
        yield
    finally:
        _onednn_on = previous


def exporting() -> bool:
    """Whether the model is being traced for export (ONNX, torch.export): graphs take the general path — no
    value-dependent shortcuts, no kernels without an exported form."""
    return torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export()


def is_plain(*modules: nn.Module, kind: type = nn.Linear) -> bool:
    """Every module is exactly ``kind`` (not a subclass, not a wrapper) and nothing hooks into its forward."""
    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        return False
    return all(type(m) is kind and not m._forward_hooks and not m._forward_pre_hooks for m in modules)


def is_exact_gelu(activation: nn.Module) -> bool:
    """The activation is a plain, exact (erf) GELU: what the fused kernels compute."""
    return is_plain(activation, kind=nn.GELU) and activation.approximate == "none"


def _onednn_applies(layer: nn.Linear, x: torch.Tensor) -> bool:
    """oneDNN's linear has no autograd and runs fp32 on the CPU only."""
    if not _onednn_on or x.device.type != "cpu" or x.dtype != torch.float32 or layer.weight.dtype != torch.float32:
        return False
    if exporting() or torch.compiler.is_compiling():  # inductor lowers F.linear to its own oneDNN kernel
        return False
    if torch.is_autocast_enabled("cpu"):
        return False
    if x.numel() == x.shape[-1]:  # one row (a decoding step): oneDNN's per-call cost outweighs a matrix-vector
        return False  # product (1 thread, 1 × 1536 → 384: 874 µs vs F.linear's 107 µs)
    return not (torch.is_grad_enabled() and (x.requires_grad or layer.weight.requires_grad))


def linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, through oneDNN when ``layer`` is a plain ``nn.Linear`` and no gradient is needed."""
    if is_plain(layer) and _onednn_applies(layer, x):
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "none", [], "")
    return layer(x)


def linear_activation(layer: nn.Module, activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``activation(layer(x))``, the exact GELU fused into oneDNN's linear when both modules are plain."""
    if is_plain(layer) and is_exact_gelu(activation) and _onednn_applies(layer, x):
        return torch.ops.mkldnn._linear_pointwise(x, layer.weight, layer.bias, "gelu", [], "none")
    return activation(linear(layer, x))


def project_qkv(query: nn.Module, key: nn.Module, value: nn.Module, x: torch.Tensor, training: bool
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values; in training one GEMM over the three concatenated plain projections.

    The concatenation is redone every call (weights change every step), so it pays only when a backward follows.
    """
    if training and is_plain(query, key, value) and all(p.bias is not None for p in (query, key, value)):
        weight = torch.cat([query.weight, key.weight, value.weight])
        bias = torch.cat([query.bias, key.bias, value.bias])
        q, k, v = F.linear(x, weight, bias).chunk(3, dim=-1)
        return q, k, v
    return linear(query, x), linear(key, x), linear(value, x)


def feed_forward(up: nn.Module, activation: nn.Module, down: nn.Module, x: torch.Tensor, training: bool
                 ) -> torch.Tensor:
    """``down(activation(up(x)))``; in training with plain projections and the exact GELU, the GELU is recomputed
    in the backward pass instead of stored (``gelu_linear``)."""
    if training and is_plain(up, down) and is_exact_gelu(activation) and down.bias is not None:
        return gelu_linear(F.linear(x, up.weight, up.bias), down.weight, down.bias)
    return linear(down, linear_activation(up, activation, x))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout_prob: float,
              return_probs: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention of (batch, heads, seq, head_size) tensors; ``mask`` is additive (padding and any
    position bias). Returns the context and, when asked, the attention probabilities."""
    if return_probs or (dropout_prob > 0 and q.device.type == "cpu"):  # the CPU's SDPA has no fast dropout path
        context, probs = explicit_attention(q, k, v, mask, dropout_prob)
        return context, probs if return_probs else None
    if mask is not None and mask.dtype != q.dtype:
        mask = mask.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_prob), None


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                       dropout_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(QKᵀ/√d + mask)·V, keeping the probabilities (the attention maps).

    Scaling and masking work in place on the scores (their gradients need neither input), and the mask is cast to
    the scores' dtype (bf16 under autocast), so training stores one probability-sized tensor per layer.
    """
    probs = attention_probs(q, k, mask)
    return dropout_matmul(probs, v, dropout_prob), probs


def attention_probs(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(QKᵀ/√d + mask): the attention probabilities (before dropout)."""
    scores = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.add_(mask.clamp(min=torch.finfo(scores.dtype).min).to(scores.dtype))
    return scores.softmax(dim=-1)
