"""BERT, top to bottom: embeddings → N post-LN encoder layers → pooler.

Module and parameter names are Hugging Face's (``encoder.layer.3.attention.self.query.weight``), so checkpoints map
one to one. Attention runs through ``scaled_dot_product_attention``; an explicit softmax path exists only to return
attention maps when they are asked for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import BertConfig
from .dropout import Dropout, dropout_matmul
from .linear import Linear, gelu_linear
from .pretrained import Pretrained

ACTIVATION_FUNCTIONS = {
    "relu": F.relu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


@dataclass
class BertModelOutput:
    """What ``BertModel`` returns; also indexable like transformers' tuples (``out[0]`` is the last layer)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, index: int) -> torch.Tensor | tuple | None:
        present = [v for v in (self.last_hidden_state, self.pooler_output, self.hidden_states, self.attentions)
                   if v is not None]
        return present[index]


class BertEmbeddings(nn.Module):
    """Token + learned position + segment embeddings, summed, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        positions = self.position_embeddings.weight[: input_ids.shape[1]]
        x = self.word_embeddings(input_ids) + positions + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention over the whole sequence, padding masked out."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = Linear(config.hidden_size, config.hidden_size)
        self.key = Linear(config.hidden_size, config.hidden_size)
        self.value = Linear(config.hidden_size, config.hidden_size)
        self.dropout_prob = config.attention_probs_dropout_prob

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) → (batch, heads, seq, head_size)."""
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.num_heads, self.head_size).transpose(1, 2)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries, keys and values; in training one GEMM over the three concatenated projections.

        Why: one read of ``x`` (and one bf16 copy of it under autocast) instead of three, and a wider GEMM; the
        concatenation is redone every call, which pays off only when a backward pass follows. Projections replaced
        by other modules (adapters) are called one by one.
        """
        projections = (self.query, self.key, self.value)
        if not (self.training and all(type(p) is Linear for p in projections)):
            return tuple(p(x) for p in projections)
        weight = torch.cat([p.weight for p in projections])
        bias = torch.cat([p.bias for p in projections])
        return F.linear(x, weight, bias).chunk(3, dim=-1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        q, k, v = (self.split_heads(t) for t in self.project_qkv(x))
        dropout = self.dropout_prob if self.training else 0.0
        if return_probs or (dropout > 0 and q.device.type == "cpu"):  # the CPU's SDPA has no fast dropout path
            context, probs = explicit_attention(q, k, v, mask, dropout)
            probs = probs if return_probs else None
        else:
            context, probs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout), None
        batch, _, seq, _ = context.shape
        return context.transpose(1, 2).reshape(batch, seq, -1), probs


def explicit_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout_prob: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(QKᵀ/√d + mask)·V, keeping the probabilities (the attention maps) to return them.

    Scaling and masking work in place on the scores (their gradients need neither input), and the mask is cast to
    the scores' dtype (bf16 under autocast), so training stores one probability-sized tensor per layer.
    """
    scores = (q @ k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores.add_(mask.clamp(min=torch.finfo(scores.dtype).min).to(scores.dtype))
    probs = scores.softmax(dim=-1)
    return dropout_matmul(probs, v, dropout_prob), probs


class BertResidualOutput(nn.Module):
    """Project to ``hidden_size``, dropout, add the residual, LayerNorm: how both blocks of a layer end (post-LN)."""

    def __init__(self, config: BertConfig, in_features: int):
        super().__init__()
        self.dense = Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.add_and_norm(self.dense(x), residual)

    def add_and_norm(self, projected: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Dropout, residual, LayerNorm: the block's end once its input is projected."""
        return self.LayerNorm(self.dropout(projected) + residual)


class BertAttention(nn.Module):
    """Self-attention and its output block."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config, config.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False):
        context, probs = self.self(x, mask, return_probs)
        return self.output(context, x), probs


class BertIntermediate(nn.Module):
    """The feed-forward layer's expansion to ``intermediate_size`` and its activation."""

    def __init__(self, config: BertConfig):
        super().__init__()
        fused = config.hidden_act == "gelu"  # exact GELU runs inside the linear kernel
        self.dense = Linear(config.hidden_size, config.intermediate_size, activation="gelu" if fused else None)
        self.activation = None if fused else ACTIVATION_FUNCTIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense(x)
        return x if self.activation is None else self.activation(x)


class BertLayer(nn.Module):
    """One encoder layer: attention block, then feed-forward block, each with residual + LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config, config.intermediate_size)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The two FFN projections; in training with exact GELU the activation is recomputed in the backward pass
        rather than stored (``gelu_linear``): the widest activation of the layer is not kept."""
        first, second = self.intermediate.dense, self.output.dense
        if self.training and self.intermediate.activation is None and type(second) is Linear:
            return gelu_linear(F.linear(x, first.weight, first.bias), second.weight, second.bias)
        return second(self.intermediate(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_probs: bool = False):
        x, probs = self.attention(x, mask, return_probs)
        return self.output.add_and_norm(self.feed_forward(x), x), probs


class BertEncoder(nn.Module):
    """The stack of ``num_hidden_layers`` layers."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))


class BertPooler(nn.Module):
    """Dense + tanh on the ``[CLS]`` vector: the sentence representation NSP was trained on."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


def additive_padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(batch, seq) 1/0 mask → (batch, 1, 1, seq) additive mask; None when nothing is padded (faster kernels)."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


class BertModel(Pretrained):
    """The BERT encoder: ``last_hidden_state`` for every token, ``pooler_output`` for the sequence."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.gradient_checkpointing = False  # see Pretrained.gradient_checkpointing_enable
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertModelOutput:
        """Encode a (batch, seq) batch of token ids; ``attention_mask`` is 1 for real tokens, 0 for padding."""
        token_type_ids = self.check_inputs(input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)
        mask = additive_padding_mask(attention_mask, x.dtype)
        hidden_states, attentions = [x], []
        checkpointed = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.encoder.layer:
            if checkpointed:
                x, probs = checkpoint(layer, x, mask, output_attentions, use_reentrant=False)
            else:
                x, probs = layer(x, mask, output_attentions)
            hidden_states.append(x)
            attentions.append(probs)
        return BertModelOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )

    def check_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """Refuse inputs the embeddings cannot take, with the reason; returns the segment ids to use."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a 2-D (batch, seq) tensor of token ids")
        if input_ids.is_floating_point():
            raise ValueError(f"input_ids must hold integer token ids, got {input_ids.dtype}")
        batch, seq = input_ids.shape
        if seq > config.max_position_embeddings:
            raise ValueError(f"input has {seq} tokens but the model has only {config.max_position_embeddings} "
                             "positions; truncate it (tokenizer: truncation=True, max_length=...)")
        if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {config.vocab_size}); got "
                             f"{int(input_ids.min())}..{int(input_ids.max())} (a tokenizer of another vocabulary?)")
        for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if tensor is not None and tuple(tensor.shape) != (batch, seq):
                raise ValueError(f"{name} has shape {tuple(tensor.shape)}, input_ids {(batch, seq)}")
        if token_type_ids is None:
            return torch.zeros_like(input_ids)
        if token_type_ids.numel() and int(token_type_ids.max()) >= config.type_vocab_size:
            raise ValueError(f"token_type_ids must be < type_vocab_size={config.type_vocab_size}")
        return token_type_ids
