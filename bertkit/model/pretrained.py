"""What every bertkit model shares: its architecture, weight initialisation, loading / saving Hugging Face folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoint
from ..config import BertConfig
from . import pruning
from .architectures import architecture, hf_name
from .norms import RMSNorm


class Pretrained(nn.Module):
    """Base class: ``from_pretrained(folder)``, ``save_pretrained(folder)``, BERT's initialisation.

    ``model_type`` names the architecture (``bert``, ``roberta``, …): the folder's config.json must say the same.
    """

    config: BertConfig
    model_type = "bert"
    config_class: type[BertConfig] = BertConfig  # what config.json is read as (encoder-decoders: Seq2SeqConfig)
    peft_config: Any = None  # a parameter-efficient method's settings (bertkit.peft's PeftConfig) once added to it

    @property
    def base_model_prefix(self) -> str:
        """The encoder's attribute in head models and its prefix in checkpoints (``bert``, ``roberta``, …)."""
        return architecture(self.model_type or self.config.model_type).prefix

    @property
    def base_model(self) -> nn.Module:
        """The encoder inside a head model (``model.bert``), or the model itself."""
        return getattr(self, self.base_model_prefix, self)

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
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)
        for module in self.modules():  # fixed tables (sinusoidal positions) are not random
            if hasattr(module, "init_fixed_weights"):
                module.init_fixed_weights()

    def check_model_type(self, config: BertConfig) -> None:
        """A config of another architecture would build this one silently wrong (RoBERTa's positions in a BERT)."""
        if config.model_type != self.model_type:
            raise ValueError(f"{type(self).__name__} is a {self.model_type} model but the config is for "
                             f"{config.model_type!r}: use the {config.model_type} class or bertkit.AutoModel")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, config: BertConfig | None = None, **kwargs: Any):
        """Load a Hugging Face model folder (config.json + model.safetensors or pytorch_model.bin), in eval mode.

        Missing head weights start from a fresh initialisation and are logged (``model.loading_report``); missing
        encoder weights, or a tensor whose shape does not match the config, are an error naming the tensors.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        heads = pruning.stored_pruned_heads(folder)  # a pruned folder: its heads are removed before loading
        if config is None:
            config = pruning.config_of_pruned(cls.config_class, folder) if heads else \
                cls.config_class.from_json_file(folder / checkpoint.CONFIG_FILE)
        if cls.model_type is not None and config.model_type != cls.model_type:
            raise ValueError(f"{folder} holds a {config.model_type!r} model (config.json model_type); load it with "
                             f"the {config.model_type} classes or bertkit.AutoModel, not {cls.__name__}")
        model = cls(config, **kwargs)
        if heads:
            pruning.prune_heads(model, heads)
        model.loading_report = checkpoint.load_weights(model, folder)
        return model.eval()

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """Write config.json + model.safetensors with transformers' names (and the tokenizer's files), atomically;
        a pruned model's config.json records its ``pruned_heads``."""
        folder = checkpoint.save_model(self, folder, tokenizer)
        pruning.record_pruned_heads(self, folder)
        return folder

    def hf_names(self) -> dict[str, str]:
        """Each state-dict name → the name transformers gives that tensor for this architecture."""
        return {name: hf_name(name, self.config) for name in self.state_dict()}

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
