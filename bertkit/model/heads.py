"""Heads on top of an encoder: the pooler, masked-LM (tied to the word embeddings), NSP / SOP, ELECTRA's
replaced-token discriminator. Each architecture picks its heads; its name map gives them transformers' names."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from . import kernels
from .dropout import Dropout
from .feed_forward import activation
from .vocab_loss import vocab_cross_entropy

IGNORE_INDEX = -100  # label of positions that are not predicted, as in transformers
ROW_MULTIPLE = 32  # masked positions are padded to a multiple of this in the fused MLM loss


class Pooler(nn.Module):
    """Dense + tanh on the ``[CLS]`` vector: the sentence representation NSP / SOP was trained on."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(kernels.linear(self.dense, hidden[:, 0]))


class PredictionHeadTransform(nn.Module):
    """Dense (hidden → embedding width) + activation + LayerNorm, before the vocabulary projection."""

    def __init__(self, config: BertConfig, width: int, act: str):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, width)
        self.transform_act_fn = activation(act)
        self.LayerNorm = nn.LayerNorm(width, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(kernels.linear_activation(self.dense, self.transform_act_fn, x))


class LMPredictionHead(nn.Module):
    """Hidden vectors → vocabulary logits; the projection *is* the word-embedding matrix, with its own bias.

    ``act`` is the transform's activation: the config's ``hidden_act`` for BERT / ALBERT / DistilBERT, the exact
    GELU whatever the config says for RoBERTa and ELECTRA's generator (as their reference code does).
    """

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding, act: str | None = None):
        super().__init__()
        self.transform = PredictionHeadTransform(config, word_embeddings.embedding_dim, act or config.hidden_act)
        self.decoder = nn.Linear(word_embeddings.embedding_dim, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight  # tied: one matrix reads tokens in and writes them out
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kernels.linear(self.decoder, self.transform(x)) + self.bias

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MLM cross-entropy of (rows, hidden) states against (rows,) labels, and the predicted ids, without
        materialising the (rows, vocab) logits (``vocab_loss``) when the decoder is a plain projection.

        The rows are padded with ignored ones to a multiple of ``ROW_MULTIPLE``: oneDNN compiles and caches kernels
        per GEMM shape (~2 MB each, for the life of the process), and the number of masked positions changes with
        every batch.
        """
        if not kernels.is_plain(self.decoder):  # a replaced decoder runs its own forward, on the full logits
            logits = self(x)
            return mlm_loss(logits, labels), logits.argmax(-1)
        rows = len(x)
        padding = -rows % ROW_MULTIPLE
        if padding:
            x = F.pad(x, (0, 0, 0, padding))
            labels = F.pad(labels, (0, padding), value=IGNORE_INDEX)
        loss, predictions = vocab_cross_entropy(self.transform(x), self.decoder.weight, self.bias, labels)
        return loss, predictions[:rows]


class PreTrainingHeads(nn.Module):
    """``cls``: the MLM head over tokens and, for NSP / SOP, a two-way classifier over the pooled ``[CLS]``."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding, mlm_act: str | None = None,
                 sentence_head: bool = True, sentence_dropout: float = 0.0):
        super().__init__()
        self.predictions = LMPredictionHead(config, word_embeddings, mlm_act)
        self.seq_relationship = nn.Linear(config.hidden_size, 2) if sentence_head else None
        self.sentence_dropout = Dropout(sentence_dropout)  # ALBERT's SOP head drops out the pooled vector


class DiscriminatorPredictions(nn.Module):
    """ELECTRA's replaced-token detection: dense + activation + one logit per token (replaced or original)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = activation(config.hidden_act)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return kernels.linear(self.dense_prediction, kernels.linear_activation(self.dense, self.activation,
                                                                               hidden)).squeeze(-1)


@dataclass
class BertForPreTrainingOutput:
    """Losses and logits of the pretraining tasks (``seq_relationship_logits`` is None without NSP / SOP)."""

    loss: torch.Tensor | None
    prediction_logits: torch.Tensor | None
    seq_relationship_logits: torch.Tensor | None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    mlm_predictions: torch.Tensor | None = None  # argmax ids of the masked positions (``return_logits=False``)


@dataclass
class MaskedLMOutput:
    """Loss and vocabulary logits of masked-LM."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ReplacedTokenOutput:
    """ELECTRA's discriminator: a logit per token (> 0: replaced) and the loss over real tokens."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def predicted_rows(hidden: torch.Tensor, labels: torch.Tensor | None, only_masked: bool
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The rows the vocabulary projection runs on and their labels: every position, or with ``only_masked`` those
    whose label is not -100, in row-major order (the pretraining speed-up)."""
    if not only_masked:
        return hidden, labels
    if labels is None:
        raise ValueError("only_masked_logits / return_logits=False need labels (-100 where nothing is predicted)")
    predicted = labels != IGNORE_INDEX
    return hidden[predicted], labels[predicted]


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the positions whose label is not -100."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)
