"""A fine-tuned adapter folder as a task model: its base model (``base_model_name_or_path``) with the adapter and
the head on it. Folders ``peft`` wrote (no ``task_config.json``) load as sequence classifiers, labels numbered."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..checkpoint import log_report, quiet_loading
from ..config import BertConfig
from ..peft.folders import ADAPTER_WEIGHTS, TASK_CONFIG, check_base, load_adapter, read_adapter_config
from .models import (
    MODEL_CLASSES,
    BertForQuestionAnswering,
    BertForTokenClassification,
    TaskConfig,
    default_pooling,
    encoder_config,
)

ARCHITECTURE_CLASSES = {"ForSequenceClassification": MODEL_CLASSES["classification"],
                        "ForTokenClassification": BertForTokenClassification,
                        "ForQuestionAnswering": BertForQuestionAnswering}


def base_folder(folder: Path, base_model: str | os.PathLike | None) -> Path:
    """The adapter's base model folder: given, or named in adapter_config.json; it must be here."""
    _, values = read_adapter_config(folder)
    named = base_model or values.get("base_model_name_or_path")
    if not named:
        raise ValueError(f"{folder}/adapter_config.json names no base model (base_model_name_or_path): give it")
    path = Path(named)
    if not path.is_absolute() and not path.is_dir():
        path = folder / named
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"the adapter's base model {named} is not a model folder here "
                                "(adapter_config.json base_model_name_or_path); give the base model's folder")
    return path


def task_config(folder: Path, base: BertConfig) -> tuple[TaskConfig, type]:
    """The task config bertkit saved with the adapter, or one for a ``peft`` sequence classifier."""
    path = folder / TASK_CONFIG
    if path.is_file():
        config = TaskConfig.from_json_file(path)
        names = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
        cls = next((c for a in names for suffix, c in ARCHITECTURE_CLASSES.items() if a.endswith(suffix)),
                   MODEL_CLASSES["classification"])
        return config, cls
    stored = load_file(str(folder / ADAPTER_WEIGHTS))
    head = next((v for k, v in stored.items() if k.endswith("classifier.weight")), None)
    if head is None:
        raise ValueError(f"{folder} has no task_config.json and no classifier in its weights: not a classifier")
    labels = {i: f"LABEL_{i}" for i in range(head.shape[0])}
    config = TaskConfig.over(base, id2label=labels, pooling=default_pooling(base.model_type))
    return config, MODEL_CLASSES["classification"]


def load_task_adapter(folder: str | os.PathLike, base_model: str | os.PathLike | None = None) -> torch.nn.Module:
    """The task model an adapter folder describes, in eval mode."""
    folder = Path(folder)
    base_dir = base_folder(folder, base_model)
    base = encoder_config(base_dir)
    _, values = read_adapter_config(folder)
    check_base(values, base, folder)
    config, cls = task_config(folder, base)
    with quiet_loading():  # the base folder has no head: the adapter brings it, so the warning waits until then
        model = cls.from_pretrained(base_dir, config=config)
    report = model.loading_report
    model = load_adapter(model, folder)
    loaded = {name for name, p in model.named_parameters() if p.requires_grad}  # all of them came from the adapter
    report.missing = [name for name in report.missing if name not in loaded]
    log_report(model, report, f"{base_dir / ''} + {folder / ADAPTER_WEIGHTS}")
    return model


def merge_adapter(folder: str | os.PathLike, output: str | os.PathLike,
                  base_model: str | os.PathLike | None = None) -> Path:
    """Fold a LoRA adapter into its base model's weights and save a plain model folder (no inference cost)."""
    from ..peft import merge_lora
    from ..tokenization import AutoTokenizer

    folder = Path(folder)
    model = load_task_adapter(folder, base_model)
    if model.peft_config.method != "lora":
        raise ValueError(f"only LoRA merges into the weights; a {model.peft_config.method} adapter adds modules or "
                         "positions the base architecture lacks, so it stays an adapter folder")
    merge_lora(model)
    tokens = folder if (folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file() else None
    tokenizer = AutoTokenizer.from_pretrained(tokens or base_folder(folder, base_model))
    return model.save_pretrained(output, tokenizer=tokenizer)
