"""bertkit's sentence-classification heads for transformers: shipped inside a fine-tuned folder, loaded with
``AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)``.

bertkit copies this file into a folder whose head transformers' own ``*ForSequenceClassification`` cannot hold:
a sentence vector other than the pooler's (``pooling``: ``cls``, ``mean``, ``max``) or the BertSim recipe's two-layer
head (``classifier_head: two_layer``: dense → tanh → dropout → dense). It reads those settings from config.json and
builds the same modules under the same weight names, so transformers' scores equal bertkit's. Self-contained:
it imports only torch and transformers (it runs inside transformers, never inside bertkit).
"""

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    AlbertModel,
    AlbertPreTrainedModel,
    BertModel,
    BertPreTrainedModel,
    DistilBertModel,
    DistilBertPreTrainedModel,
    ElectraModel,
    ElectraPreTrainedModel,
    RobertaModel,
    RobertaPreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput


class TwoLayerHead(nn.Module):
    """dense (hidden → inner), tanh, dropout, dense (→ labels): bertkit's ``TwoLayerHead``."""

    def __init__(self, hidden_size, inner_size, num_labels, dropout):
        super().__init__()
        self.dense = nn.Linear(hidden_size, inner_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(inner_size, num_labels)

    def forward(self, x):
        return self.out_proj(self.dropout(torch.tanh(self.dense(x))))


def sentence_vector(outputs, attention_mask, pooling):
    """The pooler's output, the first token's vector, or a pooling over the real tokens (sentence-transformers'
    modes: mean, max, mean_sqrt_len_tokens, weightedmean, lasttoken)."""
    if pooling == "pooled":
        return outputs.pooler_output
    hidden = outputs.last_hidden_state
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if pooling == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    if pooling == "mean_sqrt_len_tokens":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9).sqrt()
    if pooling == "weightedmean":  # weights 1, 2, 3, … by position
        weights = mask * torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if pooling == "lasttoken":
        last = attention_mask.shape[1] - 1 - attention_mask.flip(1).to(torch.int).argmax(dim=1)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last] * mask[rows, last]
    raise ValueError(f"unknown pooling {pooling!r} in config.json")


class BertkitClassificationMixin:
    """The task model: an encoder (without a pooler unless ``pooling: pooled``), dropout, then the head."""

    encoder_class = None
    has_pooler = True
    takes_token_types = True

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.pooling = getattr(config, "pooling", "pooled")
        kwargs = {"add_pooling_layer": self.pooling == "pooled"} if self.has_pooler else {}
        setattr(self, self.base_model_prefix, self.encoder_class(config, **kwargs))
        dropout = getattr(config, "classifier_dropout", None)
        dropout = config.hidden_dropout_prob if dropout is None else dropout
        self.dropout = nn.Dropout(dropout)
        if getattr(config, "classifier_head", "linear") == "two_layer":
            inner = getattr(config, "classifier_inner_size", 256)
            self.classifier = TwoLayerHead(config.hidden_size, inner, config.num_labels, dropout)
        else:
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        if self.takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        outputs = getattr(self, self.base_model_prefix)(input_ids, attention_mask=attention_mask, return_dict=True,
                                                        **kwargs)
        logits = self.classifier(self.dropout(sentence_vector(outputs, attention_mask, self.pooling)))
        loss = None
        if labels is not None:
            kind = self.config.problem_type or "single_label_classification"
            if kind == "regression":
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
            elif kind == "multi_label_classification":
                loss = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states,
                                        attentions=outputs.attentions)


class BertkitForSequenceClassification(BertkitClassificationMixin, BertPreTrainedModel):
    encoder_class = BertModel


class RobertaBertkitForSequenceClassification(BertkitClassificationMixin, RobertaPreTrainedModel):
    encoder_class = RobertaModel


class AlbertBertkitForSequenceClassification(BertkitClassificationMixin, AlbertPreTrainedModel):
    encoder_class = AlbertModel


class ElectraBertkitForSequenceClassification(BertkitClassificationMixin, ElectraPreTrainedModel):
    encoder_class = ElectraModel
    has_pooler = False


class DistilBertBertkitForSequenceClassification(BertkitClassificationMixin, DistilBertPreTrainedModel):
    encoder_class = DistilBertModel
    has_pooler = False
    takes_token_types = False
