"""Sequence classifiers that are their architecture's own (transformers') class, built under its names.

RoFormer and XLM-R read the first token through ``classifier.dense`` → activation → ``classifier.out_proj``;
DeBERTa-v2 through its ContextPooler (``pooler.dense``) and ``classifier``; ModernBERT pools (cls or mean), then
``head`` (dense, activation, norm) and ``classifier``. A folder fine-tuned with these loads in transformers'
``XxxForSequenceClassification`` as it is (no remote code); other sentence vectors or heads are refused by name.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model.deberta_v2 import ContextPooler
from ..model.feed_forward import activation
from ..model.modernbert import ModernBertPredictionHead

OWN_HEAD_ARCHITECTURES = ("roformer", "xlm-roberta", "deberta-v2", "modernbert")
FIRST_TOKEN_HEADS = ("roformer", "xlm-roberta", "deberta-v2")  # their head reads token 0: pooling "pooled"
SEQUENCE_TASKS = ("classification", "multi_label", "regression")


class ClassificationHead(nn.Module):
    """RoBERTa-style head (``dense``, ``out_proj``) on the first token: XLM-R's with tanh, RoFormer's with its
    ``hidden_act``; dropout before and after the dense layer as transformers' class applies it."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, act: str):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act = activation(act)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(self.act(self.dense(self.dropout(hidden[:, 0])))))


def uses_own_head(config) -> bool:
    """Whether a sequence classifier of this config is its architecture's own class: always for DeBERTa and
    ModernBERT; for RoFormer and XLM-R with pooling: pooled and a linear classifier (another sentence vector builds
    bertkit's generic head over the encoder, which no saved folder can name: remote.py refuses it)."""
    if config.model_type in ("deberta-v2", "modernbert"):
        return True
    return config.model_type in OWN_HEAD_ARCHITECTURES and config.pooling == "pooled" and \
        config.classifier_head == "linear"


def check_own_head(config) -> None:
    """The sentence vector and head the architecture's class has; anything else is refused by name."""
    if config.model_type == "deberta-v2" and (config.pooling != "pooled" or config.classifier_head != "linear"):
        raise ValueError(f"{config.model_type} classifies as transformers' class does (its head on the first "
                         f"token): pooling: pooled and classifier_head: linear; got pooling: {config.pooling}, "
                         f"classifier_head: {config.classifier_head}")
    if config.model_type == "modernbert" and config.classifier_head != "linear":
        raise ValueError(f"modernbert classifies as transformers' ModernBertForSequenceClassification (head + "
                         f"classifier): classifier_head: linear, got {config.classifier_head}")


def own_head_modules(config) -> dict[str, nn.Module]:
    """The head's modules under transformers' attribute names, for the config's architecture."""
    check_own_head(config)
    if config.model_type == "xlm-roberta":
        return {"classifier": ClassificationHead(config.hidden_size, config.num_labels, config.head_dropout, "tanh")}
    if config.model_type == "roformer":
        return {"classifier": ClassificationHead(config.hidden_size, config.num_labels, config.head_dropout,
                                                 config.hidden_act)}
    if config.model_type == "deberta-v2":
        dropout = config.hidden_dropout_prob if config.cls_dropout is None else config.cls_dropout
        return {"pooler": ContextPooler(config), "dropout": nn.Dropout(dropout),
                "classifier": nn.Linear(config.pooler_hidden_size, config.num_labels)}
    if config.model_type == "modernbert":
        return {"head": ModernBertPredictionHead(config), "drop": nn.Dropout(config.classifier_dropout),
                "classifier": nn.Linear(config.hidden_size, config.num_labels)}
    raise ValueError(f"{config.model_type} has no classifier of its own here; choose one of {OWN_HEAD_ARCHITECTURES}")


def own_head_logits(model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(batch, num_labels) logits of ``model``'s own head over the encoder's last hidden states."""
    kind = model.config.model_type
    if kind in ("roformer", "xlm-roberta"):
        return model.classifier(hidden)
    if kind == "deberta-v2":
        return model.classifier(model.dropout(model.pooler(hidden)))
    if model.config.classifier_pooling == "cls":  # ModernBERT
        pooled = hidden[:, 0]
    else:
        weights = (torch.ones(hidden.shape[:2], device=hidden.device) if attention_mask is None
                   else attention_mask).to(hidden.dtype).unsqueeze(-1)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    return model.classifier(model.drop(model.head(pooled)))
