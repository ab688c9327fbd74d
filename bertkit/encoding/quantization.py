"""int8 inference: SmoothQuant-style smoothing, then dynamic quantization of the encoder's projections.

Dynamic quantization gives a whole batch of activations one int8 scale, and BERT's activations have a few outlier
channels, so every other channel keeps only a few levels (min cosine to fp32 ~0.96 on MiniLM). Smoothing (Xiao et
al., 2023) moves that range into the weights: input channel j is divided by ``s_j`` at run time and the weight's
column j multiplied by it, with ``s_j = max|x_j|^α / max|W_j|^(1-α)`` measured on a few calibration sentences; then
the weights are quantized per output channel (min cosine ~0.995). The FFN's down-projection stays fp32: its input,
the GELU output, quantizes badly even smoothed (min cosine ~0.92 with it quantized).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# SmoothQuant's balance between the activations' range and the weights': on Python-docs retrieval, int8 MiniLM
# kept 99.8 % of fp32's recall@10 with 0.7 (and with 0.3), 98.9 % with 0.5 (bench/retrieval.py --precisions)
ALPHA = 0.7
# varied text (questions, prose, code, numbers): BERT's outlier channels are the same whatever the input
CALIBRATION_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password if I forgot the old one?",
    "Stock markets fell sharply on Tuesday after the central bank raised interest rates by 0.5%.",
    "def main(): print('hello world')",
    "I absolutely loved this film; the acting was superb and the story moving.",
    "Water boils at 100 degrees Celsius at sea level.",
    "What is the capital of Australia?",
    "The committee will meet again next week to discuss the budget proposal for 2025.",
]


class SmoothedLinear(nn.Module):
    """``linear(x / s)``: the input scaled per channel before a (quantized) linear whose weight absorbed ``s``."""

    def __init__(self, linear: nn.Module, inverse_scale: torch.Tensor):
        super().__init__()
        self.linear = linear
        self.register_buffer("inverse_scale", inverse_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inverse_scale)


def quantized_projections(model: nn.Module) -> list[str]:
    """Names of the projections int8 quantizes: every plain linear of the layers but the FFN's down-projection."""
    names = []
    for name, module in model.named_modules():
        is_down = name.endswith("output.dense") and ".attention." not in name
        if type(module) is nn.Linear and ".layer." in name and not is_down:
            names.append(name)
    return names


@torch.inference_mode()
def input_ranges(model: nn.Module, names: list[str], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The largest |input| per channel of each named linear over one forward pass of ``batch``."""
    ranges: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0).float()
            ranges[name] = torch.maximum(ranges[name], x) if name in ranges else x
        return hook

    hooks = [model.get_submodule(name).register_forward_pre_hook(record(name)) for name in names]
    try:
        model(**batch)
    finally:
        for handle in hooks:
            handle.remove()
    return ranges


def quantize_int8(model: nn.Module, batch: dict[str, torch.Tensor]) -> None:
    """Smooth and dynamically quantize (int8, per output channel) the model's projections, in place; ``batch``
    (padded ``input_ids`` / ``attention_mask`` of calibration sentences) measures the activations' ranges."""
    names = quantized_projections(model)
    ranges = input_ranges(model, names, batch)
    for name in names:
        linear = model.get_submodule(name)
        with torch.no_grad():
            weight_range = linear.weight.abs().amax(dim=0).clamp(min=1e-5)
            scale = (ranges[name].clamp(min=1e-5) ** ALPHA / weight_range ** (1 - ALPHA)).clamp(min=1e-5)
            linear.weight.mul_(scale)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, SmoothedLinear(linear, 1 / scale))
    with warnings.catch_warnings():  # torch.ao warns it will move to torchao; its kernels are the CPU's int8 path
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model, {f"{name}.linear": per_channel_dynamic_qconfig for name in names}, inplace=True)


__all__ = ["CALIBRATION_TEXTS", "SmoothedLinear", "quantize_int8", "quantized_projections"]
