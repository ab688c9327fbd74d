"""Adapter folders in ``peft``'s format: ``adapter_config.json`` + ``adapter_model.safetensors`` (+ the tokenizer
and bertkit's ``task_config.json``: labels and input settings, so ``bertkit predict`` needs nothing else).

What ``peft`` writes, bertkit writes: LoRA tensors as ``base_model.model.<transformers module>.lora_A.weight``, the
head as ``base_model.model.classifier.*``; prefix / prompt methods their vectors as one ``prompt_embeddings``
table and the head as ``base_model.classifier.*``. The base model is named by ``base_model_name_or_path``.
Methods ``peft`` has no format for (adapters, BitFit, head-only) use the same layout with bertkit's names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import write_atomic, write_text_atomic
from ..config import BertConfig
from ..model.architectures import hf_name
from .apply import apply_peft, trainable_parameters
from .bottleneck import AdapterLinear
from .config import PEFT_TYPES, PeftConfig
from .lora import LoraLinear
from .prefix import load_prefix_table
from .prompt import load_prompt_table
from .targets import layer_modules

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TASK_CONFIG = "task_config.json"
TASK_TYPES = {"BertForSequenceClassification": "SEQ_CLS", "BertForTokenClassification": "TOKEN_CLS",
              "BertForQuestionAnswering": "QUESTION_ANS"}
SHAPE_FIELDS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


def is_adapter_folder(folder: str | os.PathLike) -> bool:
    """A folder holding an adapter (not a whole model)."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def _prompt_learning(config: PeftConfig) -> bool:
    return config.is_prefix or config.is_prompt


def _stored_name(model: nn.Module, name: str, prompt_learning: bool) -> str:
    """The name a trained parameter has in ``adapter_model.safetensors`` (transformers' module names)."""
    config = model.base_model.config
    module_name, _, leaf = name.rpartition(".")
    inner = ""
    while module_name:  # inside a LoRA / adapter wrapper: map the wrapped projection's name
        module = model.get_submodule(module_name)
        if isinstance(module, (LoraLinear, AdapterLinear)):
            mapped = hf_name(module_name + ".weight", config).removesuffix(".weight")
            return f"base_model.model.{mapped}.{inner}{leaf}"
        module_name, _, part = module_name.rpartition(".")
        inner = f"{part}.{inner}"
    return ("base_model." if prompt_learning else "base_model.model.") + hf_name(name, config)


def hf_targets(model: nn.Module) -> list[str]:
    """The last part of transformers' name of every LoRA-wrapped projection (``q_lin`` in DistilBERT): the
    ``target_modules`` that make ``peft`` wrap the same projections."""
    config = model.base_model.config
    return sorted({hf_name(name + ".weight", config).removesuffix(".weight").rpartition(".")[2]
                   for name, module in model.named_modules() if isinstance(module, LoraLinear)})


def bertkit_targets(model: nn.Module, targets: list[str]) -> list[str]:
    """``peft``'s ``target_modules`` (transformers' names) as names of the projections inside bertkit's layers."""
    config = model.base_model.config
    chosen = []
    for name, (short, _) in layer_modules(model).items():
        hf = hf_name(name + ".weight", config).removesuffix(".weight")
        if any(hf == t or hf.endswith("." + t) for t in targets) and short not in chosen:
            chosen.append(short)
    return chosen or targets  # nothing matched: apply_peft names the problem


def adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What an adapter folder stores: every trained tensor but the prompt encoders', and their output table."""
    config: PeftConfig = model.peft_config
    prompt_learning = _prompt_learning(config)
    state = {_stored_name(model, name, prompt_learning): p.detach()
             for name, p in model.named_parameters()
             if p.requires_grad and not name.startswith(("peft_prefix.", "peft_prompt."))}
    if prompt_learning:
        encoder = model.peft_prefix if config.is_prefix else model.peft_prompt
        with torch.no_grad():
            state["prompt_embeddings"] = encoder.table().detach()
    return {k: v.contiguous().cpu().float() for k, v in state.items()}


def peft_config_dict(model: nn.Module, base_model: str | None) -> dict[str, Any]:
    """``adapter_config.json``: ``peft``'s fields for its methods, bertkit's settings under ``bertkit``."""
    config: PeftConfig = model.peft_config
    base = model.base_model.config
    values: dict[str, Any] = {"base_model_name_or_path": base_model, "peft_type": PEFT_TYPES.get(config.method),
                              "task_type": TASK_TYPES.get(type(model).__name__), "inference_mode": True,
                              "modules_to_save": [p.rstrip(".") for p in getattr(model, "head_prefixes", ())]}
    if config.method == "lora":
        values |= {"r": config.r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
                   "target_modules": hf_targets(model), "bias": "none", "fan_in_fan_out": False,
                   "init_lora_weights": True, "use_rslora": False, "use_dora": False}
    elif _prompt_learning(config):
        values |= {"num_virtual_tokens": config.num_virtual_tokens, "token_dim": base.embedding_width
                   if config.is_prompt else base.hidden_size, "num_transformer_submodules": 1,
                   "num_attention_heads": base.num_attention_heads, "num_layers": base.num_hidden_layers}
        if config.is_prefix:
            values |= {"prefix_projection": config.method == "prefix",
                       "encoder_hidden_size": config.encoder_hidden_size or base.hidden_size}
        if config.method == "ptuning":
            values |= {"encoder_hidden_size": config.encoder_hidden_size or base.hidden_size,
                       "encoder_reparameterization_type": "MLP", "encoder_num_layers": 2, "encoder_dropout": 0.0}
        if config.method == "prompt":
            values |= {"prompt_tuning_init": "RANDOM"}
    trainable, total = trainable_parameters(model)
    values["bertkit"] = {"method": config.method, "settings": vars(config).copy(),
                         "base_shape": {k: getattr(base, k) for k in SHAPE_FIELDS},
                         "trainable_parameters": trainable, "total_parameters": total}
    return values


def save_adapter(model: nn.Module, folder: str | os.PathLike, base_model: str | os.PathLike | None,
                 tokenizer: Any = None) -> Path:
    """Write the adapter folder of a model ``apply_peft`` changed (atomically, file by file)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = adapter_state(model)
    write_atomic(folder / ADAPTER_WEIGHTS, lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
    base = str(Path(base_model).resolve()) if base_model else None
    write_text_atomic(folder / ADAPTER_CONFIG, json.dumps(peft_config_dict(model, base), indent=2) + "\n")
    if hasattr(model.config, "id2label"):
        write_text_atomic(folder / TASK_CONFIG, model.config.to_json_string(
            architectures=[getattr(model, "architecture_name", type(model).__name__)]))
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def read_adapter_config(folder: str | os.PathLike) -> tuple[PeftConfig, dict[str, Any]]:
    """The method an adapter folder holds (written by bertkit or by ``peft``), and the raw config."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    ours = values.get("bertkit")
    if ours:
        return PeftConfig(**ours["settings"]), values
    kind = values.get("peft_type")
    n = values.get("num_virtual_tokens", 20)
    if kind == "LORA":
        targets = values.get("target_modules")
        if not isinstance(targets, list):
            raise ValueError(f"{path}: target_modules must be a list of names (bertkit does not take regexes)")
        if values.get("use_dora") or values.get("use_rslora") or values.get("bias", "none") != "none":
            raise ValueError(f"{path}: DoRA, rsLoRA and LoRA biases are not supported by bertkit")
        return PeftConfig("lora", r=values["r"], lora_alpha=values["lora_alpha"],
                          lora_dropout=values.get("lora_dropout", 0.0), target_modules=targets), values
    if kind == "PREFIX_TUNING":
        method = "prefix" if values.get("prefix_projection") else "ptuning_v2"
        return PeftConfig(method, num_virtual_tokens=n, encoder_hidden_size=values.get("encoder_hidden_size")), values
    if kind == "PROMPT_TUNING":
        return PeftConfig("prompt", num_virtual_tokens=n), values
    if kind == "P_TUNING":
        hidden = values.get("encoder_hidden_size")
        return PeftConfig("ptuning", num_virtual_tokens=n, encoder_hidden_size=hidden), values
    raise ValueError(f"{path}: peft_type {kind!r} is not one bertkit loads (LORA, PREFIX_TUNING, PROMPT_TUNING, "
                     "P_TUNING, or a bertkit adapter folder)")


def check_base(values: dict[str, Any], base: BertConfig, folder: Path) -> None:
    """Refuse an adapter made for another base model, naming what differs."""
    expected = dict((values.get("bertkit") or {}).get("base_shape") or {})
    if not expected and values.get("num_layers"):  # peft's own record of the base's shape (prompt learning)
        expected = {"num_hidden_layers": values["num_layers"], "num_attention_heads": values["num_attention_heads"]}
    problems = [f"{k} {expected[k]!r} (the base model has {getattr(base, k)!r})"
                for k in SHAPE_FIELDS if k in expected and expected[k] != getattr(base, k)]
    if problems:
        raise ValueError(f"the adapter in {folder} was made for another base model: " + "; ".join(problems))


def load_adapter(model: nn.Module, folder: str | os.PathLike, config: PeftConfig | None = None) -> nn.Module:
    """Add the folder's method to ``model`` (a task model of the base) and load its tensors; in eval mode."""
    folder = Path(folder)
    read, values = read_adapter_config(folder)
    config = config or read
    check_base(values, model.base_model.config, folder)
    if config.method == "lora" and "bertkit" not in values:  # peft names transformers' modules
        config.target_modules = bertkit_targets(model, config.target_modules)
    apply_peft(model, config)
    try:
        stored = load_file(str(folder / ADAPTER_WEIGHTS))
    except (OSError, SafetensorError) as error:
        raise ValueError(f"cannot read {folder / ADAPTER_WEIGHTS}: {error}") from None
    expected = {_stored_name(model, name, _prompt_learning(config)): p for name, p in model.named_parameters()
                if p.requires_grad and not name.startswith(("peft_prefix.", "peft_prompt."))}
    table = stored.pop("prompt_embeddings", None)
    stored = {k.replace(".modules_to_save.default.", "."): v for k, v in stored.items()}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{folder / ADAPTER_WEIGHTS} does not fit this model ({config.method}): missing "
                         f"{missing[:6]}, unexpected {unexpected[:6]} (another base model or task?)")
    with torch.no_grad():
        for name, parameter in expected.items():
            if tuple(stored[name].shape) != tuple(parameter.shape):
                raise ValueError(f"{name} has shape {tuple(stored[name].shape)} in {folder}, the model needs "
                                 f"{tuple(parameter.shape)}: the adapter was made for another base model")
            parameter.copy_(stored[name])
    if _prompt_learning(config):
        if table is None:
            raise ValueError(f"{folder / ADAPTER_WEIGHTS} has no prompt_embeddings")
        if config.is_prefix:
            load_prefix_table(model.peft_prefix, table)
        else:
            load_prompt_table(model.peft_prompt, table)
    return model.eval()
