"""Folders transformers loads with bertkit's own heads: ``modeling_bertkit.py`` and ``auto_map`` in config.json.

transformers' ``BertForSequenceClassification`` holds one head: the pooler (dense + tanh on ``[CLS]``) and one
linear layer. A folder fine-tuned with another sentence vector (``pooling: cls / mean / max``) or the BertSim recipe's
two-layer head would load there with a random pooler, or not at all; such a folder gets
``remote_code/modeling_bertkit.py`` beside its weights and an ``auto_map`` naming it, so
``AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`` builds the same head.
Plain folders stay plain: no remote code, no ``trust_remote_code`` needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .own_heads import uses_own_head

SOURCE = Path(__file__).parent / "remote_code" / "modeling_bertkit.py"
MODULE = SOURCE.stem
CLASS_PREFIXES = {"bert": "", "roberta": "Roberta", "albert": "Albert", "electra": "Electra",
                  "distilbert": "DistilBert"}


def needs_remote_code(config: Any) -> bool:
    """Whether a sequence-classification config's head is one transformers' own class cannot hold (the own heads
    of RoFormer, XLM-R, DeBERTa and ModernBERT never: finetuning/own_heads.py)."""
    if uses_own_head(config):
        return False
    return config.pooling != "pooled" or config.classifier_head != "linear"


def class_name(model_type: str) -> str:
    """The class in ``modeling_bertkit.py`` for an encoder type: ``BertkitForSequenceClassification`` for BERT."""
    if model_type not in CLASS_PREFIXES:
        raise ValueError(f"bertkit's remote-code classifier has no {model_type} variant: fine-tune {model_type} with "
                         "pooling: pooled and classifier_head: linear (transformers' own class)")
    return f"{CLASS_PREFIXES[model_type]}BertkitForSequenceClassification"


def ship(folder: str | os.PathLike, model_type: str) -> None:
    """Copy ``modeling_bertkit.py`` into a saved folder and point config.json's ``auto_map`` at its class."""
    folder = Path(folder)
    write_text_atomic(folder / SOURCE.name, SOURCE.read_text(encoding="utf-8"))
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = [class_name(model_type)]
    config["auto_map"] = {"AutoModelForSequenceClassification": f"{MODULE}.{class_name(model_type)}"}
    write_text_atomic(folder / "config.json", json.dumps(config, indent=2) + "\n")
