"""DeBERTa-v2 / v3 (He et al. 2021) on the shared blocks: BERT's post-LN layers whose attention adds the
disentangled c2p / p2c terms (``disentangled_attention.py``, one relative-position table for all layers), absolute
positions in the input only with ``position_biased_input``, an optional convolution joining the first layer's output
(``conv_kernel_size``), no pooler in the encoder. Names are transformers' ``DebertaV2Model`` /
``DebertaV2ForMaskedLM`` / ``DebertaV2ForSequenceClassification`` (prefix ``deberta``); config and renames:
``deberta_v2_architecture.py``. Not built: transformers' enhanced-mask-decoder steps (``z_steps``, 0 in its model)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .. import checkpoint as folders
from .deberta_v2_architecture import DebertaV2Config
from .disentangled_attention import RelativeEmbeddings
from .dropout import Dropout
from .encoder import Encoder, EncoderModel
from .feed_forward import activation
from .language_models import ForMaskedLM, ForReplacedTokenDetection
from .pretrained import Pretrained


class ConvLayer(nn.Module):
    """DeBERTa-v2's convolution over the embeddings (``encoder.conv``): conv, masked, activation, added to the first
    layer's output, LayerNorm, padded positions zeroed."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        size = config.conv_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, size, padding=(size - 1) // 2,
                              groups=config.conv_groups)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.act = activation(config.conv_act)

    def forward(self, embedded: torch.Tensor, layer_output: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``keep``: (batch, seq, 1) 1 on real tokens, 0 on padding, or None."""
        out = self.conv(embedded.transpose(1, 2)).transpose(1, 2)
        if keep is not None:
            out = out * keep
        out = self.LayerNorm(layer_output + self.act(self.dropout(out)))
        return out if keep is None else out * keep


class DebertaV2Encoder(Encoder):
    """The layers, the relative-position table they share (``relative``) and the optional ``conv``."""

    def __init__(self, config: DebertaV2Config):
        super().__init__(config)
        self.relative = RelativeEmbeddings(config) if config.relative_attention else None
        self.conv = ConvLayer(config) if config.conv_kernel_size > 0 else None
        if self.relative is not None:
            for layer in self.layer:
                layer.attention.self.disentangled.bind(self.relative, layer.attention.self)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, cache: Any = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """The last hidden state and (when asked) every layer's output and attention maps; padded positions of the
        embeddings are zeroed first, as DeBERTa's (the convolution reads its neighbours)."""
        if memory is not None or cache is not None:
            raise ValueError("DeBERTa is an encoder: it has no cross-attention and no decoding cache")
        keep = attention_mask[..., None].to(x.dtype) if attention_mask is not None else None
        if keep is not None:
            x = x * keep
        mask = self.attention_mask(attention_mask, x)
        embedded, hidden_states, attentions = x, [x], []
        checkpointed = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for index, layer in enumerate(self.layer):
            if checkpointed:
                x, probs = checkpoint(layer, x, mask, output_attentions, use_reentrant=False)
            else:
                x, probs = layer(x, mask, output_attentions)
            if index == 0 and self.conv is not None:
                x = self.conv(embedded, x, keep)
            hidden_states.append(x)
            attentions.append(probs)
        return (x, tuple(hidden_states) if output_hidden_states else None,
                tuple(attentions) if output_attentions else None)


class DebertaV2Model(EncoderModel):
    """The DeBERTa-v2 / v3 encoder: word (+ absolute position, + segment) embeddings, disentangled attention, no
    pooler (the classifier has its own ``ContextPooler``)."""

    model_type = "deberta-v2"
    config_class = DebertaV2Config

    def __init__(self, config: DebertaV2Config, add_pooling_layer: bool = False):
        if add_pooling_layer:
            raise ValueError("DeBERTa's encoder has no pooler (its classifier pools with a ContextPooler): use "
                             "add_pooling_layer=False")
        if not isinstance(config, DebertaV2Config):
            raise ValueError(f"DeBERTa models take a DebertaV2Config (its relative-attention fields), got "
                             f"{type(config).__name__}")
        super().__init__(config, add_pooling_layer=False)
        self.encoder = DebertaV2Encoder(config)
        self.init_weights()


class DebertaV2ForMaskedLM(ForMaskedLM):
    """DeBERTa with the masked-LM head (transform, decoder tied to the word embeddings, bias): ``cls.predictions``
    in legacy folders, ``lm_predictions.lm_head`` with ``legacy: false`` (v3's checkpoints)."""

    model_type = "deberta-v2"
    config_class = DebertaV2Config
    base_class = DebertaV2Model


class DebertaV2ForReplacedTokenDetection(ForReplacedTokenDetection):
    """DeBERTa-v3's discriminator: the encoder and ELECTRA's replaced-token head (``discriminator_predictions``).
    transformers has no class for the pair: its DebertaV2Model reads the encoder of the folder."""

    model_type = "deberta-v2"
    config_class = DebertaV2Config
    base_class = DebertaV2Model


class ContextPooler(nn.Module):
    """DeBERTa's classifier pooling (``pooler.dense``): dropout, dense and activation on the first token."""

    def __init__(self, config: DebertaV2Config):
        super().__init__()
        self.dense = nn.Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = Dropout(config.pooler_dropout)
        self.act = activation(config.pooler_hidden_act)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(self.dropout(hidden[:, 0])))


@dataclass
class SequenceClassifierOutput:
    """Loss (when labels are given) and one row of logits per sequence."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


class DebertaV2ForSequenceClassification(Pretrained):
    """DeBERTa + ContextPooler + dropout + linear classifier; the loss as transformers' class computes it."""

    model_type = "deberta-v2"
    config_class = DebertaV2Config
    head_prefixes = ("pooler.", "classifier.")  # trained by every parameter-efficient method (bertkit.peft)

    def __init__(self, config: DebertaV2Config, num_labels: int = 2, problem_type: str | None = None):
        super().__init__()
        if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1:
            raise ValueError(f"num_labels must be an integer ≥ 1, got {num_labels!r}")
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
        self.config, self.num_labels, self.problem_type = config, num_labels, problem_type
        self.deberta = DebertaV2Model(config)
        self.pooler = ContextPooler(config)
        self.dropout = Dropout(config.hidden_dropout_prob if config.cls_dropout is None else config.cls_dropout)
        self.classifier = nn.Linear(config.pooler_hidden_size, num_labels)
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> SequenceClassifierOutput:
        """(batch, num_labels) logits; the loss when ``labels`` are given."""
        out = self.deberta(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(self.pooler(out.last_hidden_state)))
        loss = self.loss(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Without a problem_type: MSE for one label, cross-entropy over labels ≥ 0 (integer labels), soft-label
        cross-entropy (a row of label weights); otherwise the named problem's loss."""
        kind = self.problem_type
        if kind == "regression" or (kind is None and self.num_labels == 1):
            if self.num_labels == 1:
                return F.mse_loss(logits.view(-1), labels.view(-1).to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if kind == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        if kind == "single_label_classification" or labels.dim() == 1 or labels.shape[-1] == 1:
            labels = labels.view(-1).long()
            if kind is None:  # transformers' default skips negative labels (and gives 0 when none is left)
                kept = labels >= 0
                if not kept.any():
                    return logits.sum() * 0.0
                logits, labels = logits[kept], labels[kept]
            return F.cross_entropy(logits.float(), labels)
        return -(F.log_softmax(logits, -1) * labels).sum(-1).mean()

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, config: DebertaV2Config | None = None, **kwargs: Any):
        """Load a folder; its config.json's ``id2label`` gives the number of labels and ``problem_type`` the loss
        (transformers' fields), unless given here."""
        path = Path(folder) / folders.CONFIG_FILE
        values = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if isinstance(values.get("id2label"), dict):
            kwargs.setdefault("num_labels", len(values["id2label"]))
        kwargs.setdefault("problem_type", values.get("problem_type"))
        return super().from_pretrained(folder, config, **kwargs)

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """As every model, with the labels and problem type in config.json for transformers' class."""
        folder = super().save_pretrained(folder, tokenizer)
        path = folder / folders.CONFIG_FILE
        values = json.loads(path.read_text(encoding="utf-8"))
        values["id2label"] = {str(i): f"LABEL_{i}" for i in range(self.num_labels)}
        values["label2id"] = {f"LABEL_{i}": i for i in range(self.num_labels)}
        values["problem_type"] = self.problem_type
        folders.write_json(path, values)
        return folder

