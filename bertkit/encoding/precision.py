"""Inference precision of an encoder: fp32, bf16 or int8, each taken only where this machine runs it natively.

- **bf16**: the projections' weights are stored in bf16 and run under CPU/GPU autocast, so every GEMM reads and
  computes bf16 (fp32 accumulation) while LayerNorm, softmax and the residual stream stay fp32 — min cosine to fp32
  ~0.99998 on MiniLM, where casting the whole model to bf16 gives ~0.997. Native only with AVX-512 BF16 or AMX on
  a CPU (elsewhere bf16 is emulated, many times slower than fp32), so without them it falls back to fp32.
- **int8**: the encoder's projections smoothed and dynamically quantized (quantization.py: int8 weights per output
  channel, activations quantized per batch at run time by fbgemm / oneDNN). Fast with VNNI / AMX; on AVX2 alone it
  still runs, through slower kernels.

A fallback is one warning naming what is missing; :func:`apply_precision` returns the precision in effect, and
:func:`autocast` is the context every caller runs the model's forward in (the encoder, the server).
"""

from __future__ import annotations

import contextlib
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .batching import pad_batch
from .quantization import CALIBRATION_TEXTS, quantize_int8

if TYPE_CHECKING:
    from ..tokenization import BertTokenizer

PRECISIONS = ("fp32", "bf16", "int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")  # quantized engines that run dynamic int8 linears


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where it cannot be read, e.g. not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 GEMMs in hardware (AVX-512 BF16 / AMX on a CPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and any(flag in cpu_flags() for flag in BF16_FLAGS)


def fast_int8() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI / AMX), which the fast int8 kernels use."""
    return any(flag in cpu_flags() for flag in VNNI_FLAGS)


def int8_engine() -> str | None:
    """The quantized engine torch runs int8 linears with on this CPU, or None when it has none."""
    supported = torch.backends.quantized.supported_engines
    if torch.backends.quantized.engine in INT8_ENGINES:
        return torch.backends.quantized.engine
    return next((engine for engine in INT8_ENGINES if engine in supported), None)


def checked_precision(precision: str) -> str:
    """``precision`` lower-cased, or a clear error naming the choices."""
    name = str(precision).strip().lower()
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return name


def apply_precision(model: nn.Module, precision: str, tokenizer: BertTokenizer | None = None) -> str:
    """Put ``model`` (in place) in ``precision`` where this machine runs it natively; returns the precision in
    effect (``"fp32"`` after a fallback, which one warning explains). int8 calibrates with ``tokenizer``."""
    precision = checked_precision(precision)
    device = next(model.parameters()).device
    if precision == "bf16":
        if not native_bf16(device):
            warnings.warn(f"precision='bf16' falls back to fp32: this {device.type.upper()} has no native bf16 "
                          f"({' / '.join(BF16_FLAGS)} missing), and emulated bf16 is several times slower than fp32",
                          stacklevel=3)
            return "fp32"
        for module in model.modules():
            if type(module) is nn.Linear:
                module.to(torch.bfloat16)
    elif precision == "int8":
        engine = int8_engine() if device.type == "cpu" else None
        if engine is None:
            where = "this torch build has no quantized CPU engine" if device.type == "cpu" else \
                f"int8 runs on the CPU only, and the model is on {device}"
            warnings.warn(f"precision='int8' falls back to fp32: {where}", stacklevel=3)
            return "fp32"
        if not fast_int8():
            warnings.warn(f"precision='int8' runs without VNNI ({' / '.join(VNNI_FLAGS)} missing): torch's int8 "
                          "kernels take their slower AVX2 path here", stacklevel=3)
        if tokenizer is None:
            raise ValueError("precision='int8' calibrates on a few sentences: pass the model's tokenizer")
        torch.backends.quantized.engine = engine
        ids = [tokenizer.encode(text) for text in CALIBRATION_TEXTS]
        input_ids, attention_mask = pad_batch(ids, tokenizer.pad_token_id, device)
        quantize_int8(model, {"input_ids": input_ids, "attention_mask": attention_mask})
    model.inference_precision = precision
    return precision


def autocast(model: nn.Module) -> contextlib.AbstractContextManager:
    """The context a forward of ``model`` runs in: bf16 autocast for a bf16 model, nothing otherwise."""
    if getattr(model, "inference_precision", "fp32") != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16)


def compile_model(model: nn.Module) -> None:
    """Run ``model``'s forward through ``torch.compile`` (dynamic shapes: one graph for every batch length).

    Inductor keeps compiled graphs in its on-disk cache, so a later process warms up from there.
    """
    model.forward = torch.compile(model.forward, dynamic=True)


__all__ = ["PRECISIONS", "apply_precision", "autocast", "compile_model", "checked_precision", "cpu_flags", "fast_int8",
           "native_bf16"]
