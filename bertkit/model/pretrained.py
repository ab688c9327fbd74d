"""What every bertkit model shares: weight initialisation and loading / saving Hugging Face folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoint
from ..config import BertConfig


class Pretrained(nn.Module):
    """Base class: ``from_pretrained(folder)``, ``save_pretrained(folder)``, BERT's initialisation."""

    config: BertConfig

    def init_weights(self) -> None:
        """Normal(0, initializer_range) weights, zero biases, unit LayerNorms (as google-research/bert)."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, config: BertConfig | None = None, **kwargs: Any):
        """Load a Hugging Face model folder (config.json + model.safetensors or pytorch_model.bin), in eval mode.

        Missing and unexpected weights are logged (and kept in ``model.loading_report``); missing heads start
        from a fresh initialisation; a tensor whose shape does not match the config is an error.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        config = config or BertConfig.from_json_file(folder / checkpoint.CONFIG_FILE)
        model = cls(config, **kwargs)
        model.loading_report = checkpoint.load_weights(model, folder)
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """Write config.json + model.safetensors (and the tokenizer's files if one is given), atomically."""
        return checkpoint.save_model(self, folder, tokenizer)

    def gradient_checkpointing_enable(self) -> None:
        """Keep only each encoder layer's input during training and recompute the rest in the backward pass.

        Activation memory drops from every intermediate of every layer to one layer's worth, for about a third
        more compute; dropout is replayed exactly (the RNG state is saved with each checkpoint).
        """
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def num_parameters(self) -> int:
        """Number of distinct parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())
