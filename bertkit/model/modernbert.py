"""ModernBERT (Warner et al. 2024): a pre-norm encoder without biases, rotary positions with a global and a local
base, GeGLU feed-forwards, and sliding-window attention (±local_attention / 2) in all layers but every
``global_attn_every_n_layers``-th. transformers' ``ModernBertModel`` / ``ModernBertForMaskedLM`` /
``ModernBertForSequenceClassification``, module names one to one (``model.layers.3.attn.Wqkv``).

The pieces are bertkit's: the activation table (``feed_forward.py``), the SDPA kernel and the window
(``local_attention.py``), the masked-LM loss. Rotary positions are computed here rather than by ``rotary.py``, which
pairs features (2i, 2i + 1) as RoFormer does and takes its angles in float64: ModernBERT pairs feature i with
i + head / 2 (the "rotate half" layout its weights were trained with) and its angles are float32 products, as in
transformers and flash-attention, so that long inputs turn by exactly the angles the model learned with.
The unpadded path (packed tokens, attention per sequence) is ``modernbert_unpadded.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import kernels
from .dropout import Dropout
from .encoder import BertModelOutput
from .feed_forward import activation
from .heads import IGNORE_INDEX, ROW_MULTIPLE, BertForPreTrainingOutput, MaskedLMOutput, mlm_loss, predicted_rows
from .local_attention import local_global_attention
from .modernbert_architecture import ModernBertConfig
from .pretrained import Pretrained
from .vocab_loss import vocab_cross_entropy


@lru_cache(maxsize=32)
def rope_table(length: int, dim: int, base: float, device: torch.device, dtype: torch.dtype
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(length, dim) cos and signed sin of position p · base^(−2i / dim) for feature pairs (i, i + dim / 2): cos
    twice, then (−sin, sin), in float32 arithmetic as the model was trained; shared by every layer of a kind.
    Made outside inference mode so training may reuse it."""
    with torch.inference_mode(False):
        frequency = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        angle = torch.arange(length, dtype=torch.float32)[:, None] * frequency[None, :]
        cos, sin = angle.cos(), angle.sin()
        return torch.cat([cos, cos], -1).to(device, dtype), torch.cat([-sin, sin], -1).to(device, dtype)


def rotate_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Turn pairs (i, i + d/2) of x's last dimension: (a, b) → (a cos − b sin, b cos + a sin), with ``cos`` /
    ``sin`` as :func:`rope_table` lays them out (broadcast over x's leading dimensions, one row per position)."""
    a, b = x.chunk(2, dim=-1)
    return x * cos + torch.cat([b, a], dim=-1) * sin


def norm(config: ModernBertConfig) -> nn.LayerNorm:
    """ModernBERT's LayerNorm over hidden_size: a bias only with ``norm_bias``."""
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=config.norm_bias)


class ModernBertEmbeddings(nn.Module):
    """Token embeddings, LayerNorm (no bias unless ``norm_bias``), dropout: no position or segment table."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.norm = norm(config)
        self.drop = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.drop(self.norm(self.tok_embeddings(input_ids)))


class ModernBertMLP(nn.Module):
    """GeGLU: ``Wi`` projects to twice ``intermediate_size``; act(first half) ⊙ second half; dropout; ``Wo``."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.mlp_bias)
        self.act = activation(config.hidden_act)
        self.drop = Dropout(config.activation_dropout)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.Wi(x).chunk(2, dim=-1)
        return self.Wo(self.drop(self.act(value) * gate))


class ModernBertAttention(nn.Module):
    """Fused ``Wqkv``, rotary positions of the layer's base, global or sliding-window attention, ``Wo``."""

    def __init__(self, config: ModernBertConfig, index: int):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.attention_bias)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=config.attention_bias)
        self.dropout_prob = config.attention_probs_dropout_prob
        self.out_drop = Dropout(config.attention_probs_dropout_prob)
        local = config.layer_types[index] == "sliding_attention"
        self.half_window = config.local_attention // 2 if local else None  # None: global attention
        self.rope_base = config.local_rope_theta if local else config.global_rope_theta
        self.positions = config.max_position_embeddings  # one angle table for every input length

    def project(self, x: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rows (…, hidden) → q, k, v of (…, heads, head_size), q and k turned by each row's position."""
        q, k, v = self.Wqkv(x).unflatten(-1, (3, self.num_heads, self.head_size)).unbind(-3)
        cos, sin = rope_table(self.positions, self.head_size, self.rope_base, x.device, torch.float32)
        cos, sin = cos[positions].unsqueeze(-2), sin[positions].unsqueeze(-2)  # one angle row per token, all heads
        # turned in float32 and cast back, as transformers does: bf16 / fp16 runs keep the angles' precision
        return rotate_halves(q.float(), cos, sin).to(q.dtype), rotate_halves(k.float(), cos, sin).to(k.dtype), v

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """(batch, L, heads, head_size) q, k, v → the context (batch, L, hidden); ``keep`` marks real keys."""
        dropout = self.dropout_prob if self.training else 0.0
        context = local_global_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), keep,
                                         self.half_window, dropout)
        return context.transpose(1, 2).flatten(-2)

    def output(self, context: torch.Tensor) -> torch.Tensor:
        """The context projected back to the residual stream."""
        return self.out_drop(self.Wo(context))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device)
        return self.output(self.attend(*self.project(x, positions), keep))


class ModernBertEncoderLayer(nn.Module):
    """Pre-norm: x + attn(attn_norm(x)), then x + mlp(mlp_norm(x)); layer 0's attn_norm is the identity (the
    embeddings end with a norm already)."""

    def __init__(self, config: ModernBertConfig, index: int):
        super().__init__()
        self.attn_norm = nn.Identity() if index == 0 else norm(config)
        self.attn = ModernBertAttention(config, index)
        self.mlp_norm = norm(config)
        self.mlp = ModernBertMLP(config)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), keep)
        return x + self.mlp(self.mlp_norm(x))


class ModernBertPretrained(Pretrained):
    """What the ModernBERT classes share: the config class, ModernBERT's initialisation, strict loading."""

    model_type = "modernbert"
    config_class = ModernBertConfig
    config: ModernBertConfig

    def check_config(self, config: ModernBertConfig) -> None:
        """A plain BertConfig lacks the window and the thetas: refused by name."""
        if not isinstance(config, ModernBertConfig):
            raise ValueError(f"{type(self).__name__} needs a ModernBertConfig, got {type(config).__name__}")
        self.check_model_type(config)

    def init_weights(self) -> None:
        """ModernBERT's: truncated normals (± cutoff · std), std initializer_range for inputs, / √(2 · layers)
        for the projections into the residual stream, hidden^-0.5 for the classifier; unit norms, zero biases."""
        config = self.config
        std = config.initializer_range
        out_std = std / math.sqrt(2.0 * config.num_hidden_layers)
        for name, module in self.named_modules():
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.Linear, nn.Embedding)):
                chosen = out_std if name.endswith(("Wo", "head.dense", "decoder")) else std
                chosen = config.hidden_size ** -0.5 if name == "classifier" else chosen
                cutoff = config.initializer_cutoff_factor * chosen
                nn.init.trunc_normal_(module.weight, std=chosen, a=-cutoff, b=cutoff)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, folder, config: ModernBertConfig | None = None, **kwargs):
        """Load a folder of transformers' ModernBERT classes; a missing encoder weight is an error."""
        model = super().from_pretrained(folder, config, **kwargs)
        missing = [n for n in model.loading_report.missing if n.startswith("model.") or cls is ModernBertModel]
        if missing:
            shown = ", ".join(missing[:8]) + (f" … and {len(missing) - 8} more" if len(missing) > 8 else "")
            raise ValueError(f"{folder} does not hold this {cls.__name__}: encoder weights missing ({shown}); is "
                             "it a checkpoint of another architecture?")
        return model


class ModernBertModel(ModernBertPretrained):
    """The ModernBERT encoder: ``embeddings``, ``layers.N``, ``final_norm``."""

    def __init__(self, config: ModernBertConfig, add_pooling_layer: bool = False):
        if add_pooling_layer:
            raise ValueError("ModernBERT has no pooler: its classifier pools (cls or mean) and applies its head")
        super().__init__()
        self.check_config(config)
        self.config = config
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = norm(config)
        self.gradient_checkpointing = False  # training keeps each layer's input only (Pretrained's switch)
        self.init_weights()

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "ModernBertModel"

    def check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     token_type_ids: torch.Tensor | None) -> None:
        """Token ids in the vocabulary, a mask of their shape, no segments, no more tokens than positions."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError("input_ids must be a (batch, sequence) tensor of token ids")
        if input_ids.numel() and not 0 <= int(input_ids.min()) <= int(input_ids.max()) < self.config.vocab_size:
            raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}) (vocab_size)")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"the input has {input_ids.shape[1]} tokens but the model has "
                             f"{self.config.max_position_embeddings} positions (max_position_embeddings); truncate it")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")
        if token_type_ids is not None and bool(token_type_ids.ne(0).any()):
            raise ValueError("ModernBERT has no segment embeddings: token_type_ids must be absent or all 0")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False) -> BertModelOutput:
        """The last hidden state (after ``final_norm``) and, when asked, the embeddings' and every layer's output
        (the last one normed, as transformers gives them)."""
        self.check_inputs(input_ids, attention_mask, token_type_ids)
        keep = None if attention_mask is None else attention_mask.bool()
        x = self.embeddings(input_ids)
        hidden_states = [x]
        for layer in self.layers:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, keep, use_reentrant=False)  # recomputed in the backward pass
            else:
                x = layer(x, keep)
            hidden_states.append(x)
        x = self.final_norm(x)
        hidden_states[-1] = x
        return BertModelOutput(x, hidden_states=tuple(hidden_states) if output_hidden_states else None)


class ModernBertPredictionHead(nn.Module):
    """``dense`` (bias: ``classifier_bias``), ``classifier_activation``, ``norm``: before the decoder and the
    classifier alike."""

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=config.classifier_bias)
        self.act = activation(config.classifier_activation)
        self.norm = norm(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.dense(x)))


class ModernBertForMaskedLM(ModernBertPretrained):
    """ModernBERT with its MLM head: ``head``, then ``decoder`` tied to the token embeddings (a bias of its own)."""

    head_prefixes = ("head.", "decoder.")

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.config = config
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=config.decoder_bias)
        self.init_weights()
        self.decoder.weight = self.model.embeddings.tok_embeddings.weight

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "ModernBertForMaskedLM"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, **pretraining: Any) -> MaskedLMOutput | BertForPreTrainingOutput:
        """Vocabulary logits of every position; the cross-entropy over labels that are not -100. The pretraining
        step's arguments (``return_logits``, ``only_masked_logits``, ``next_sentence_label``) give its output."""
        if labels is not None and tuple(labels.shape) != tuple(input_ids.shape):
            raise ValueError(f"labels must have input_ids' shape {tuple(input_ids.shape)}, got {tuple(labels.shape)}")
        out = self.model(input_ids, attention_mask, token_type_ids, output_hidden_states)
        if pretraining:
            return self.pretraining_output(out, labels, **pretraining)
        logits = self.decoder(self.head(out.last_hidden_state))
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states)

    def pretraining_output(self, out: BertModelOutput, labels: torch.Tensor | None,
                           next_sentence_label: torch.Tensor | None = None, only_masked_logits: bool = False,
                           return_logits: bool = True) -> BertForPreTrainingOutput:
        """What ``bertkit pretrain`` reads, as the family's ``ForMaskedLM`` gives it: with ``only_masked_logits``
        the head runs on the masked positions only (rows in row-major order); with ``return_logits=False`` the
        logits are never materialised (``mlm_predictions`` holds the argmax ids). No sentence-pair head."""
        if next_sentence_label is not None:
            raise ValueError("ModernBERT has no sentence-pair head: pretrain it without NSP / SOP (pair_task: none)")
        hidden, labels = predicted_rows(out.last_hidden_state, labels, only_masked_logits or not return_logits)
        logits = predictions = loss = None
        if return_logits:
            logits = self.decoder(self.head(hidden))
            loss = mlm_loss(logits, labels) if labels is not None else None
        else:
            loss, predictions = self.masked_loss(hidden, labels)
        return BertForPreTrainingOutput(loss, logits, None, out.hidden_states, None, loss, None, predictions)

    def masked_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy and argmax ids of (rows, hidden) states, sliced over the vocabulary without the full
        logits when the decoder is a plain biased projection; rows padded as the family's MLM head pads them."""
        x = self.head(hidden)
        if self.decoder.bias is None or not kernels.is_plain(self.decoder):
            logits = self.decoder(x)
            return mlm_loss(logits, labels), logits.argmax(-1)
        rows, padding = len(x), -len(x) % ROW_MULTIPLE  # one kernel shape per multiple, not per masked count
        if padding:
            x, labels = F.pad(x, (0, 0, 0, padding)), F.pad(labels, (0, padding), value=IGNORE_INDEX)
        loss, predictions = vocab_cross_entropy(x, self.decoder.weight, self.decoder.bias, labels)
        return loss, predictions[:rows]


@dataclass
class SequenceClassifierOutput:
    """Loss (with labels) and logits of a sequence classifier."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


class ModernBertForSequenceClassification(ModernBertPretrained):
    """ModernBERT pooled (``classifier_pooling``: the first token, or the mean of the real tokens), ``head``,
    dropout, ``classifier``; the loss as transformers picks it: MSE for one label, cross-entropy for class ids,
    binary cross-entropy for float multi-label targets."""

    head_prefixes = ("head.", "classifier.")

    def __init__(self, config: ModernBertConfig):
        super().__init__()
        self.config = config
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.drop = Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "ModernBertForSequenceClassification"

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """(batch, L, hidden) → (batch, hidden): the first token, or the mean over real tokens."""
        if self.config.classifier_pooling == "cls":
            return hidden[:, 0]
        if attention_mask is None:
            return hidden.mean(dim=1)
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False) -> SequenceClassifierOutput:
        """Logits (batch, num_labels); the loss with ``labels``."""
        out = self.model(input_ids, attention_mask, token_type_ids, output_hidden_states)
        logits = self.classifier(self.drop(self.head(self.pool(out.last_hidden_state, attention_mask))))
        loss = None if labels is None else self.loss(logits, labels)
        return SequenceClassifierOutput(loss, logits, out.hidden_states)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MSE (one label), cross-entropy (integer labels), or binary cross-entropy (float multi-label targets)."""
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"labels hold {labels.shape[0]} rows for a batch of {logits.shape[0]}")
        if self.config.num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        if not labels.is_floating_point():
            if labels.dim() != 1 or not 0 <= int(labels.min()) <= int(labels.max()) < self.config.num_labels:
                raise ValueError(f"class labels must be a (batch,) tensor of ids in [0, {self.config.num_labels})")
            return F.cross_entropy(logits, labels)
        if labels.shape != logits.shape:
            raise ValueError(f"multi-label targets must have the logits' shape {tuple(logits.shape)}, got "
                             f"{tuple(labels.shape)}")
        return F.binary_cross_entropy_with_logits(logits, labels)
