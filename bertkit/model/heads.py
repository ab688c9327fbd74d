"""Pretraining heads on top of ``BertModel``: masked-LM (tied to the word embeddings) and next-sentence prediction."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from .bert import ACTIVATION_FUNCTIONS, BertModel
from .linear import Linear
from .pretrained import Pretrained
from .vocab_loss import vocab_cross_entropy

IGNORE_INDEX = -100  # label of positions that are not predicted, as in transformers
ROW_MULTIPLE = 32  # masked positions are padded to a multiple of this in the fused MLM loss


class BertPredictionHeadTransform(nn.Module):
    """Dense + activation + LayerNorm, before the vocabulary projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        fused = config.hidden_act == "gelu"
        self.dense = Linear(config.hidden_size, config.hidden_size, activation="gelu" if fused else None)
        self.activation = None if fused else ACTIVATION_FUNCTIONS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense(x)
        return self.LayerNorm(x if self.activation is None else self.activation(x))


class BertLMPredictionHead(nn.Module):
    """Hidden vectors → vocabulary logits; the projection *is* the word-embedding matrix, with its own bias."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.decoder = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight  # tied: one matrix reads tokens in and writes them out
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(x)) + self.bias

    def loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """MLM cross-entropy of (rows, hidden) states against (rows,) labels, and the predicted ids, without
        materialising the (rows, vocab) logits (``vocab_loss``).

        The rows are padded with ignored ones to a multiple of ``ROW_MULTIPLE``: oneDNN compiles and caches kernels
        per GEMM shape (~2 MB each, for the life of the process), and the number of masked positions changes with
        every batch.
        """
        rows = len(x)
        padding = -rows % ROW_MULTIPLE
        if padding:
            x = F.pad(x, (0, 0, 0, padding))
            labels = F.pad(labels, (0, padding), value=IGNORE_INDEX)
        loss, predictions = vocab_cross_entropy(self.transform(x), self.decoder.weight, self.bias, labels)
        return loss, predictions[:rows]


class BertPreTrainingHeads(nn.Module):
    """The MLM head over tokens and the NSP classifier over the pooled ``[CLS]``."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertOnlyMLMHead(nn.Module):
    """Just the MLM head (``cls.predictions``)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)


@dataclass
class BertForPreTrainingOutput:
    """Losses and logits of the two pretraining tasks."""

    loss: torch.Tensor | None
    prediction_logits: torch.Tensor | None
    seq_relationship_logits: torch.Tensor
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


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the positions whose label is not -100."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


class BertForPreTraining(Pretrained):
    """BERT with both pretraining heads; ``loss = MLM cross-entropy + NSP cross-entropy``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config, self.bert.embeddings.word_embeddings)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        only_masked_logits: bool = False,
        return_logits: bool = True,
    ) -> BertForPreTrainingOutput:
        """Logits for every position and for the sentence pair; the loss when labels are given.

        ``loss = L_mlm + L_nsp`` (``L_mlm`` alone without ``next_sentence_label``). With ``only_masked_logits``
        the vocabulary projection runs only on the positions whose label is not -100 (~15 %), the pretraining
        speed-up: ``prediction_logits`` is then (number of masked positions, vocab), in row-major position order.
        With ``return_logits=False`` as well, the logits are never materialised (the pretraining step's memory
        saving): ``prediction_logits`` is None and ``mlm_predictions`` holds the predicted ids.
        """
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        hidden = out.last_hidden_state
        if only_masked_logits or not return_logits:
            if labels is None:
                raise ValueError("only_masked_logits / return_logits=False need labels (-100 where nothing is "
                                 "predicted)")
            predicted = labels != IGNORE_INDEX
            hidden, labels = hidden[predicted], labels[predicted]
        prediction_logits = predictions = masked_lm_loss = next_sentence_loss = loss = None
        if return_logits:
            prediction_logits = self.cls.predictions(hidden)
            masked_lm_loss = mlm_loss(prediction_logits, labels) if labels is not None else None
        else:
            masked_lm_loss, predictions = self.cls.predictions.loss(hidden, labels)
        seq_relationship_logits = self.cls.seq_relationship(out.pooler_output)
        if masked_lm_loss is not None:
            loss = masked_lm_loss
            if next_sentence_label is not None:
                next_sentence_loss = F.cross_entropy(seq_relationship_logits.view(-1, 2).float(),
                                                     next_sentence_label.view(-1))
                loss = loss + next_sentence_loss
        return BertForPreTrainingOutput(loss, prediction_logits, seq_relationship_logits, out.hidden_states,
                                        out.attentions, masked_lm_loss, next_sentence_loss, predictions)


class BertForMaskedLM(Pretrained):
    """BERT with the masked-LM head only (no pooler, as in transformers)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config, self.bert.embeddings.word_embeddings)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        """Vocabulary logits for every position; the MLM loss when labels are given."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.cls.predictions(out.last_hidden_state)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)
