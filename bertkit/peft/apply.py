"""Turn a task model into a parameter-efficient one: freeze it, add the method's modules, train the head too."""

from __future__ import annotations

import dataclasses

from torch import nn

from .bottleneck import AdapterLinear
from .config import (
    ADAPTER_TARGETS,
    DEFAULT_LORA_TARGETS,
    HOULSBY_TARGETS,
    LORA_DEFAULT_TARGETS,
    PFEIFFER_TARGETS,
    PeftConfig,
)
from .lora import LoraLinear
from .prefix import add_prefix
from .prompt import add_prompt
from .targets import find_targets, replace_module


def apply_peft(model: nn.Module, config: PeftConfig) -> nn.Module:
    """Freeze ``model`` (a task model: ``model.base_model`` is its encoder) and add ``config``'s method; the task
    head (``model.head_prefixes``) stays trainable. Returns the model, changed in place."""
    if getattr(model, "peft_config", None) is not None:
        raise ValueError(f"this model already has a {model.peft_config.method} adapter; load the base model again "
                         "to add another method")
    method = config.method
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if (config.is_prefix or config.is_prompt) and not hasattr(getattr(model, "base_model", None), "encoder"):
        raise ValueError(f"peft method {method} puts virtual tokens into BERT's embeddings or attention blocks; "
                         f"{model_type} has blocks of its own: use lora, houlsby, pfeiffer, bitfit or head")
    if method == "bitfit" and not any(name.endswith(".bias") for name, _ in model.base_model.named_parameters()):
        raise ValueError(f"peft method bitfit trains the encoder's biases, and this {model_type} has none: use lora "
                         "or an adapter")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if method == "lora":
        targets = config.target_modules
        if list(targets) == DEFAULT_LORA_TARGETS and model_type in LORA_DEFAULT_TARGETS:
            # the default: the same projections under this model's names, as the saved adapter_config.json says
            targets = LORA_DEFAULT_TARGETS[model_type]
            config = dataclasses.replace(config, target_modules=list(targets))
        for name in find_targets(model, targets):
            replace_module(model, name, LoraLinear(model.get_submodule(name), config.r, config.lora_alpha,
                                                   config.lora_dropout))
    elif method in ("houlsby", "pfeiffer"):
        targets = ADAPTER_TARGETS.get(model_type, {}).get(method) or (
            HOULSBY_TARGETS if method == "houlsby" else PFEIFFER_TARGETS)
        for name in find_targets(model, targets, exact=True):
            replace_module(model, name, AdapterLinear(model.get_submodule(name), config.adapter_size))
    elif config.is_prefix:
        projection = (config.encoder_hidden_size or model.base_model.config.hidden_size) if method == "prefix" else None
        add_prefix(model, config.num_virtual_tokens, projection)
    elif config.is_prompt:
        mlp = (config.encoder_hidden_size or model.base_model.config.hidden_size) if method == "ptuning" else None
        add_prompt(model, config.num_virtual_tokens, mlp)
    elif method == "bitfit":
        for name, parameter in model.base_model.named_parameters():
            if name.endswith(".bias"):
                parameter.requires_grad_(True)
    for module in model.modules():  # the method's own modules learn ...
        if isinstance(module, (LoraLinear, AdapterLinear)):
            for child, parameter in module.named_parameters():
                parameter.requires_grad_(not child.startswith("base_layer."))
    for attribute in ("peft_prefix", "peft_prompt"):
        if hasattr(model, attribute):
            getattr(model, attribute).requires_grad_(True)
    head = tuple(getattr(model, "head_prefixes", ()))  # ... and so does the head, always
    for name, parameter in model.named_parameters():
        if head and name.startswith(head):
            parameter.requires_grad_(True)
    model.peft_config = config
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, tied tensors once."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every LoRA update into its projection and put the plain ``nn.Linear`` back: the base architecture
    again, at no inference cost, saved as an ordinary model folder."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLinear):
            module.merge()
            replace_module(model, name, module.base_layer)
    return model
