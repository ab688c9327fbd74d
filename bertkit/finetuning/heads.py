"""Task heads: small modules on top of a ``BertModel``'s outputs.

Names follow transformers' task models (``classifier``), so a fine-tuned single-linear classifier
loads in ``AutoModelForSequenceClassification`` as it is.
"""

from __future__ import annotations

import torch
from torch import nn

CLASSIFIER_HEADS = ("linear", "two_layer")


class TwoLayerHead(nn.Module):
    """The BertSim recipe's head: dense (hidden → ``inner``), tanh, dropout, dense (→ labels)."""

    def __init__(self, hidden_size: int, inner_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, inner_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(inner_size, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(x))))


def classifier_head(kind: str, hidden_size: int, num_labels: int, inner_size: int = 256,
                    dropout: float = 0.1) -> nn.Module:
    """``linear``: one dense layer (transformers' layout); ``two_layer``: :class:`TwoLayerHead`."""
    if kind == "linear":
        return nn.Linear(hidden_size, num_labels)
    if kind == "two_layer":
        return TwoLayerHead(hidden_size, inner_size, num_labels, dropout)
    raise ValueError(f"classifier_head must be one of {CLASSIFIER_HEADS}, got {kind!r}")


class SequenceSummary(nn.Module):
    """XLNet's sentence vector, as transformers' ``sequence_summary``: the last token's hidden state (XLNet ends a
    text with ``<cls>``) → ``summary`` dense → tanh → dropout; XLNet's "pooled" vector, as BERT's pooler reads the
    first token. transformers reads position -1, the last token of a batch padded on the left as XLNet's tokenizer
    pads; the last real token is the same there and stays right on a batch padded on the right."""

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.summary = nn.Linear(hidden_size, hidden_size)
        self.last_dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        last = hidden[:, -1]
        if attention_mask is not None and not bool(attention_mask[:, -1].all()):  # padded on the right
            positions = torch.arange(hidden.shape[1], device=hidden.device)
            index = (attention_mask.bool() * positions).amax(-1)
            last = hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
        return self.last_dropout(torch.tanh(self.summary(last)))
