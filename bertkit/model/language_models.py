"""The pretraining models of the family, written once: an encoder plus its heads. Architectures subclass these in a
line each (``class AlbertForPreTraining(ForPreTraining): base_class = AlbertModel``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .encoder import EncoderModel
from .heads import (
    BertForPreTrainingOutput,
    DiscriminatorPredictions,
    MaskedLMOutput,
    PreTrainingHeads,
    ReplacedTokenOutput,
    mlm_loss,
    predicted_rows,
)
from .pretrained import Pretrained


class ForPreTraining(Pretrained):
    """Encoder + MLM head + (NSP / SOP) sentence-pair head; ``loss = L_mlm + L_pair``.

    ``sentence_head = False`` gives the MLM-only model (RoBERTa, DistilBERT, ELECTRA's generator), which the
    pretraining step drives with the same arguments.
    """

    base_class: type[EncoderModel]
    sentence_head = True
    mlm_act: str | None = None  # the MLM transform's activation when it is not the config's hidden_act
    pooled_dropout = False  # ALBERT's SOP head drops out the pooled vector (classifier_dropout_prob)

    def __init__(self, config):
        super().__init__()
        self.config = config
        setattr(self, self.base_model_prefix, self.base_class(config, add_pooling_layer=self.sentence_head))
        dropout = config.classifier_dropout_prob if self.pooled_dropout else 0.0
        self.cls = PreTrainingHeads(config, self.base_model.embeddings.word_embeddings, self.mlm_act,
                                    self.sentence_head, dropout)
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
        task_type_ids: torch.Tensor | None = None,
    ) -> BertForPreTrainingOutput:
        """Logits for every position and for the sentence pair; the loss when labels are given.

        ``loss = L_mlm + L_pair`` (``L_mlm`` alone without ``next_sentence_label``). With ``only_masked_logits``
        the vocabulary projection runs only on the positions whose label is not -100 (~15 %), the pretraining
        speed-up: ``prediction_logits`` is then (number of masked positions, vocab), in row-major position order.
        With ``return_logits=False`` as well, the logits are never materialised (the pretraining step's memory
        saving): ``prediction_logits`` is None and ``mlm_predictions`` holds the predicted ids.
        """
        out = self.base_model(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                              task_type_ids=task_type_ids)
        hidden, labels = predicted_rows(out.last_hidden_state, labels, only_masked_logits or not return_logits)
        prediction_logits = predictions = masked_lm_loss = pair_loss = loss = None
        if return_logits:
            prediction_logits = self.cls.predictions(hidden)
            masked_lm_loss = mlm_loss(prediction_logits, labels) if labels is not None else None
        else:
            masked_lm_loss, predictions = self.cls.predictions.loss(hidden, labels)
        pair_logits = None
        if self.cls.seq_relationship is not None:
            pair_logits = self.cls.seq_relationship(self.cls.sentence_dropout(out.pooler_output))
        elif next_sentence_label is not None:
            raise ValueError(f"{type(self).__name__} has no sentence-pair head: pretrain it without NSP / SOP")
        if masked_lm_loss is not None:
            loss = masked_lm_loss
            if next_sentence_label is not None:
                pair_loss = F.cross_entropy(pair_logits.view(-1, 2).float(), next_sentence_label.view(-1))
                loss = loss + pair_loss
        return BertForPreTrainingOutput(loss, prediction_logits, pair_logits, out.hidden_states, out.attentions,
                                        masked_lm_loss, pair_loss, predictions)


class ForMaskedLM(ForPreTraining):
    """Encoder (no pooler) + MLM head, as transformers' ``*ForMaskedLM``: ``logits`` for every position."""

    sentence_head = False

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        task_type_ids: torch.Tensor | None = None,
        **pretraining: bool,
    ) -> MaskedLMOutput | BertForPreTrainingOutput:
        """Vocabulary logits for every position; the MLM loss when labels are given. The pretraining step's
        arguments (``return_logits``, ``only_masked_logits``, ``next_sentence_label``) give the pretraining output."""
        if pretraining:
            return super().forward(input_ids, attention_mask, token_type_ids, labels,
                                   output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                                   task_type_ids=task_type_ids, **pretraining)
        out = self.base_model(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                              task_type_ids=task_type_ids)
        logits = self.cls.predictions(out.last_hidden_state)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class ForReplacedTokenDetection(Pretrained):
    """ELECTRA's discriminator: encoder + a replaced / original logit per token; binary cross-entropy over the
    real (unpadded) tokens when ``labels`` (1 = replaced) are given."""

    base_class: type[EncoderModel]

    def __init__(self, config):
        super().__init__()
        self.config = config
        setattr(self, self.base_model_prefix, self.base_class(config, add_pooling_layer=False))
        self.discriminator_predictions = DiscriminatorPredictions(config)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> ReplacedTokenOutput:
        """(batch, seq) logits; the loss over positions where ``attention_mask`` is 1."""
        out = self.base_model(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.discriminator_predictions(out.last_hidden_state)
        loss = None
        if labels is not None:
            real = attention_mask.bool() if attention_mask is not None else torch.ones_like(labels, dtype=torch.bool)
            loss = F.binary_cross_entropy_with_logits(logits[real].float(), labels[real].float())
        return ReplacedTokenOutput(loss, logits, out.hidden_states, out.attentions)
