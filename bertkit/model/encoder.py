"""The encoder: a stack of layers (each its own, or ALBERT's few shared ones applied many times), and the model
around it — embeddings → (E→H projection) → encoder → (pooler) — that every architecture of the family is.

With ``is_decoder`` the same stack is causal (each position sees itself and earlier ones: GPT, the Transformer's
decoder), decodes step by step with a ``KVCache``, and with ``add_cross_attention`` attends to an encoder's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import BertConfig
from ..generation.kv_cache import KVCache
from . import kernels
from .block import Layer
from .dropout import Dropout
from .embeddings import Embeddings
from .heads import Pooler
from .norms import layer_norm
from .position_bias import RelativePositionBias
from .pretrained import Pretrained


@dataclass
class BertModelOutput:
    """What an encoder model returns; also indexable like transformers' tuples (``out[0]`` is the last layer)."""

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    past_key_values: KVCache | None = None  # a decoder's cache, extended by this call (``use_cache=True``)

    def __getitem__(self, index: int) -> torch.Tensor | tuple | KVCache | None:
        present = [v for v in (self.last_hidden_state, self.pooler_output, self.past_key_values,
                               self.hidden_states, self.attentions) if v is not None]
        return present[index]


def layer_schedule(config: BertConfig) -> list[list[int]]:
    """For each of the ``num_hidden_layers`` steps, the unique layers it applies, in order.

    Without sharing, step i applies layer i. ALBERT splits the steps evenly among ``num_hidden_groups`` groups of
    ``inner_group_num`` layers; a step applies every layer of its group (ALBERT-base: one layer, applied 12 times).
    """
    if config.num_hidden_groups is None:
        return [[i] for i in range(config.num_hidden_layers)]
    steps_per_group = config.num_hidden_layers // config.num_hidden_groups
    inner = config.inner_group_num
    return [[(i // steps_per_group) * inner + j for j in range(inner)] for i in range(config.num_hidden_layers)]


class Encoder(nn.Module):
    """``layer``: the unique layers; ``schedule``: which of them each step applies."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_unique_layers))
        self.schedule = layer_schedule(config)
        # computed once per forward and shared by every layer (T5 keeps it in its first layer); causal in a decoder
        self.relative_attention_bias = (RelativePositionBias(config, bidirectional=not config.is_decoder)
                                        if config.position_embedding_type == "relative_bias" else None)
        self.LayerNorm = layer_norm(config) if config.has_final_layer_norm else None
        self.dropout = Dropout(config.hidden_dropout_prob) if config.final_dropout else None  # T5
        self.is_decoder = config.is_decoder
        self.gradient_checkpointing = False  # see Pretrained.gradient_checkpointing_enable

    @property
    def depth(self) -> int:
        """Layers applied per forward pass (ALBERT applies its shared layers several times): the cache's size."""
        return sum(len(step) for step in self.schedule)

    def attention_mask(self, attention_mask: torch.Tensor | None, x: torch.Tensor, past: int = 0
                       ) -> torch.Tensor | None:
        """The additive mask every layer adds to its scores: padding, a decoder's causal mask (``past`` positions
        already cached come first), and the relative position bias if any."""
        mask = additive_padding_mask(attention_mask, x.dtype)
        if self.is_decoder and x.shape[1] > 1:  # one new position sees every cached one: nothing to mask
            causal = causal_mask(x.shape[1], past, x.dtype, x.device)
            mask = causal if mask is None else (mask + causal).clamp(min=torch.finfo(x.dtype).min)
        if self.relative_attention_bias is None:
            return mask
        bias = self.relative_attention_bias(x.shape[1], past + x.shape[1], past).to(x.dtype)
        return bias if mask is None else bias + mask

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None, output_hidden_states: bool = False,
                output_attentions: bool = False, memory: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """The last hidden state, and (when asked) the hidden state and attention maps of every layer applied.

        ``memory`` / ``memory_mask`` (0/1, batch × memory length): an encoder's output for cross-attention;
        ``cache``: keys and values of earlier positions, extended in place.
        """
        mask = self.attention_mask(attention_mask, x, cache.length if cache is not None else 0)
        memory_mask = additive_padding_mask(memory_mask, x.dtype) if memory is not None else None
        hidden_states, attentions = [x], []
        checkpointed = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        applied = 0
        for step in self.schedule:
            for index in step:
                layer = self.layer[index]
                entry = (cache.self_attention[applied], cache.cross_attention[applied]) if cache is not None \
                    else None
                applied += 1
                if checkpointed:
                    x, probs = checkpoint(layer, x, mask, output_attentions, memory, memory_mask,
                                          use_reentrant=False)
                else:
                    x, probs = layer(x, mask, output_attentions, memory, memory_mask, entry)
                attentions.append(probs)
                hidden_states.append(x)
        if self.LayerNorm is not None:
            x = self.LayerNorm(x)
            if self.dropout is not None:
                x = self.dropout(x)
            hidden_states[-1] = x
        return (x, tuple(hidden_states) if output_hidden_states else None,
                tuple(attentions) if output_attentions else None)


def causal_mask(seq: int, past: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 1, seq, past + seq) additive mask: query i (position past + i) sees keys 0 … past + i."""
    query = torch.arange(past, past + seq, device=device)[:, None]
    key = torch.arange(past + seq, device=device)[None, :]
    return torch.where(key > query, torch.finfo(dtype).min, 0.0).to(dtype)[None, None]


def additive_padding_mask(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(batch, seq) 1/0 mask → (batch, 1, 1, seq) additive mask; None when nothing is padded (faster kernels)."""
    if attention_mask is None or (not kernels.exporting() and bool(attention_mask.all())):
        return None
    keep = attention_mask[:, None, None, :].to(dtype)
    return (1.0 - keep) * torch.finfo(dtype).min


class EncoderModel(Pretrained):
    """The encoder of every architecture: ``last_hidden_state`` for every token, ``pooler_output`` for the sequence.

    Subclasses (``BertModel``, ``RobertaModel``, …) only name their architecture and position-id rule.
    """

    count_positions_after_padding = False  # RoBERTa: position ids start after the padding index
    pad_words = True  # GPT-2: no word embedding is reserved for padding
    always_project_embeddings = False  # ALBERT has its E→H projection even when E = H

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.check_model_type(config)
        self.config = config
        self.embeddings = Embeddings(config, self.count_positions_after_padding, self.pad_words)
        factorized = config.embedding_width != config.hidden_size or self.always_project_embeddings
        self.embeddings_project = nn.Linear(config.embedding_width, config.hidden_size) if factorized else None
        self.encoder = Encoder(config)
        self.pooler = Pooler(config) if add_pooling_layer else None
        self.init_weights()

    @property
    def gradient_checkpointing(self) -> bool:
        """Whether the encoder recomputes its layers in the backward pass (``gradient_checkpointing_enable``)."""
        return self.encoder.gradient_checkpointing

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.encoder.gradient_checkpointing = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        position_ids: torch.Tensor | None = None,
        task_type_ids: torch.Tensor | None = None,
        langs: torch.Tensor | None = None,
    ) -> BertModelOutput:
        """Encode a (batch, seq) batch of token ids; ``attention_mask`` is 1 for real tokens, 0 for padding.

        Decoders (``is_decoder``) also take ``encoder_hidden_states`` / ``encoder_attention_mask`` for
        cross-attention and, with ``use_cache``, return ``past_key_values`` to pass back with the next tokens
        only (``attention_mask`` then covers the cached positions too). ``position_ids`` (batch, seq): each
        token's position where it is not its index (generation from a left-padded batch). ``task_type_ids``
        (batch, seq): ERNIE's task types (``use_task_id``); ``langs`` (batch, seq): XLM's languages.
        """
        cache = self.decoding_cache(past_key_values, use_cache)
        past = cache.length if cache is not None else 0
        token_type_ids = self.check_inputs(input_ids, attention_mask, token_type_ids, past)
        self.check_memory(encoder_hidden_states, encoder_attention_mask, input_ids.shape[0])
        self.check_positions(position_ids, input_ids)
        if task_type_ids is not None:
            self.check_task_types(task_type_ids, input_ids)
        x = self.embeddings(input_ids, token_type_ids, past, position_ids, task_type_ids, langs)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        x, hidden_states, attentions = self.encoder(x, attention_mask, output_hidden_states, output_attentions,
                                                    encoder_hidden_states, encoder_attention_mask, cache)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BertModelOutput(x, pooled, hidden_states, attentions, cache)

    def decoding_cache(self, past_key_values: KVCache | None, use_cache: bool) -> KVCache | None:
        """The cache this call extends: the one passed in, a new one (``use_cache``), or none."""
        if past_key_values is None and not use_cache:
            return None
        if not self.config.is_decoder:
            raise ValueError("past_key_values / use_cache are for decoders (config.is_decoder); this encoder "
                             "attends in both directions, so earlier positions change with every new token")
        if past_key_values is None:
            return KVCache(self.encoder.depth)
        if not isinstance(past_key_values, KVCache) or len(past_key_values.self_attention) != self.encoder.depth:
            raise ValueError(f"past_key_values must be the KVCache this model returned ({self.encoder.depth} "
                             "layers)")
        return past_key_values

    def check_positions(self, position_ids: torch.Tensor | None, input_ids: torch.Tensor) -> None:
        """Explicit position ids: one per token, each within the learned positions."""
        if position_ids is None or kernels.exporting():
            return
        if not self.embeddings.add_positions:
            raise ValueError("position_ids given, but this model adds no position embeddings (position_embedding_type="
                             f"{self.config.position_embedding_type!r})")
        if position_ids.dim() != 2 or position_ids.shape[1] != input_ids.shape[1] or \
                position_ids.shape[0] not in (1, input_ids.shape[0]):
            raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")
        if position_ids.numel() and (int(position_ids.min()) < 0
                                     or int(position_ids.max()) >= self.config.max_position_embeddings):
            raise ValueError(f"position_ids must lie in [0, {self.config.max_position_embeddings})")

    def check_task_types(self, task_type_ids: torch.Tensor, input_ids: torch.Tensor) -> None:
        """ERNIE's task types: only where the model has them (``use_task_id``), one per token, within the table."""
        if self.embeddings.task_type_embeddings is None:
            raise ValueError("task_type_ids given, but this model has no task-type embeddings (ERNIE's "
                             "use_task_id)")
        if kernels.exporting():
            return
        if tuple(task_type_ids.shape) != tuple(input_ids.shape):
            raise ValueError(f"task_type_ids has shape {tuple(task_type_ids.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")
        if task_type_ids.numel() and not 0 <= int(task_type_ids.min()) <= int(task_type_ids.max()) \
                < self.config.task_type_vocab_size:
            raise ValueError(f"task_type_ids must lie in [0, {self.config.task_type_vocab_size}) "
                             "(task_type_vocab_size)")

    def check_memory(self, memory: torch.Tensor | None, memory_mask: torch.Tensor | None, batch: int) -> None:
        """Cross-attention needs the encoder's output exactly when the layers have cross-attention."""
        if not self.config.add_cross_attention:
            if memory is not None:
                raise ValueError("encoder_hidden_states given, but this model has no cross-attention "
                                 "(config.add_cross_attention)")
            return
        if memory is None:
            raise ValueError("this decoder attends to an encoder's output: pass encoder_hidden_states")
        if memory.dim() != 3 or memory.shape[0] != batch or memory.shape[2] != self.config.hidden_size:
            raise ValueError(f"encoder_hidden_states must be (batch={batch}, length, "
                             f"{self.config.hidden_size}), got {tuple(memory.shape)}")
        if memory_mask is not None and tuple(memory_mask.shape) != tuple(memory.shape[:2]):
            raise ValueError(f"encoder_attention_mask has shape {tuple(memory_mask.shape)}, "
                             f"encoder_hidden_states {tuple(memory.shape[:2])}")

    def check_inputs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, token_type_ids: torch.Tensor | None,
        past: int = 0,
    ) -> torch.Tensor | None:
        """Refuse inputs the embeddings cannot take, with the reason; returns the segment ids to use."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise ValueError("input_ids must be a 2-D (batch, seq) tensor of token ids")
        if kernels.exporting():  # a graph cannot branch on values: only the shapes are checked, at export time
            return token_type_ids if token_type_ids is not None or config.type_vocab_size == 0 else \
                torch.zeros_like(input_ids)
        if input_ids.is_floating_point():
            raise ValueError(f"input_ids must hold integer token ids, got {input_ids.dtype}")
        batch, seq = input_ids.shape
        if self.embeddings.position_embeddings is not None and past + seq > config.max_tokens:
            raise ValueError(f"input has {past + seq} tokens but the model has only {config.max_tokens} positions; "
                             "truncate it (tokenizer: truncation=True, max_length=...) or extend the positions "
                             "(bertkit.model.long_positions.extend_positions)")
        if input_ids.numel():
            low, high = torch.stack(torch.aminmax(input_ids)).tolist()  # one host sync on a GPU, not two
            if low < 0 or high >= config.vocab_size:
                raise ValueError(f"token ids must lie in [0, {config.vocab_size}); got {low}..{high} "
                                 "(a tokenizer of another vocabulary?)")
        if attention_mask is not None and tuple(attention_mask.shape) != (batch, past + seq):
            cached = f" after {past} cached positions" if past else ""
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(batch, past + seq)} "
                             f"for input_ids {(batch, seq)}{cached}")
        if token_type_ids is not None and tuple(token_type_ids.shape) != (batch, seq):
            raise ValueError(f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids {(batch, seq)}")
        if config.type_vocab_size == 0:  # DistilBERT: segments are not an input (BERT tokenizers still give them)
            return None
        if token_type_ids is None:
            return torch.zeros_like(input_ids)
        if token_type_ids.numel() and int(token_type_ids.max()) >= config.type_vocab_size:
            raise ValueError(f"token_type_ids must be < type_vocab_size={config.type_vocab_size}")
        return token_type_ids
