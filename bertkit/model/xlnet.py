"""XLNet (Yang et al. 2019): Transformer-XL's relative attention and segment memory, with two-stream attention for the
permutation language model. transformers' ``XLNetModel`` / ``XLNetLMHeadModel``, names one to one.

Inputs are batch first; ``mems`` are laid out as transformers lays them out — one (memory length, batch, hidden)
tensor per layer, each the *input* of that layer over the previous segment — so the two libraries' memories are
interchangeable. ``perm_mask[b, i, j] = 1``: token i may not see token j (its factorisation order puts j later);
``target_mapping[b, m, j] = 1``: prediction m is of token j. The feed-forward half is bertkit's block
(``Intermediate`` + ``ResidualOutput``, post-LN), its dropout after the activation included.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import ResidualOutput
from .dropout import Dropout
from .feed_forward import Intermediate
from .heads import mlm_loss
from .pretrained import Pretrained
from .xlnet_architecture import XLNetConfig
from .xlnet_attention import XLNetRelativeAttention, relative_positions, sinusoid_encoding


@dataclass
class XLNetModelOutput:
    """``last_hidden_state`` (batch, positions or predictions, hidden); ``mems`` when asked; each layer's input
    and the last output (two-stream: content, query, content, query …) and attention maps (two-stream: pairs)."""

    last_hidden_state: torch.Tensor
    mems: tuple[torch.Tensor, ...] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple | None = None


@dataclass
class XLNetLMHeadModelOutput:
    """``logits`` over the vocabulary for each position (or prediction), the loss with labels, the new memory."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    mems: tuple[torch.Tensor, ...] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple | None = None


class XLNetFeedForward(nn.Module):
    """``ff``: bertkit's expansion + activation (+ dropout) and its post-LN residual output."""

    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.intermediate = Intermediate(config)
        self.output = ResidualOutput(config, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(x), x)


class XLNetLayer(nn.Module):
    """Relative attention over both streams, then the same feed-forward on each."""

    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.rel_attn = XLNetRelativeAttention(config)
        self.ff = XLNetFeedForward(config)

    def forward(self, h: torch.Tensor, g: torch.Tensor | None, mask_h: torch.Tensor | None,
                mask_g: torch.Tensor | None, pos_emb: torch.Tensor, segments: torch.Tensor | None,
                memory: torch.Tensor | None = None, target_mapping: torch.Tensor | None = None):
        """(content stream, query stream or None, attention probabilities) after this layer."""
        h, g, probs = self.rel_attn(h, g, mask_h, mask_g, pos_emb, segments, memory, target_mapping)
        return self.ff(h), None if g is None else self.ff(g), probs


class XLNetPretrained(Pretrained):
    """What both XLNet classes share: the config class, XLNet's initialisation, strict loading."""

    model_type = "xlnet"
    config_class = XLNetConfig

    def init_weights(self) -> None:
        """BERT's initialisation, and Normal(0, initializer_range) for the raw attention tensors and mask_emb."""
        super().init_weights()
        for name, param in self.named_parameters():
            if name.rsplit(".", 1)[-1] in ("q", "k", "v", "o", "r", "r_r_bias", "r_s_bias", "r_w_bias",
                                           "seg_embed", "mask_emb"):
                nn.init.normal_(param, std=self.config.initializer_range)

    @classmethod
    def from_pretrained(cls, folder, config: XLNetConfig | None = None, **kwargs):
        """Load a folder of transformers' XLNetModel / XLNetLMHeadModel; a missing encoder weight is an error."""
        model = super().from_pretrained(folder, config, **kwargs)
        encoder = [n for n in model.loading_report.missing if not n.startswith("lm_loss.")]
        if encoder:
            shown = ", ".join(encoder[:8]) + (f" … and {len(encoder) - 8} more" if len(encoder) > 8 else "")
            raise ValueError(f"{folder} does not hold this {cls.__name__}: encoder weights missing ({shown}); is "
                             "it a checkpoint of another architecture?")
        return model


class XLNetModel(XLNetPretrained):
    """The XLNet encoder: word embeddings, ``mask_emb`` (the query stream's input), ``layer.N``."""

    def __init__(self, config: XLNetConfig, add_pooling_layer: bool = False):
        if not isinstance(config, XLNetConfig):
            raise ValueError(f"{type(self).__name__} needs an XLNetConfig, got {type(config).__name__}")
        if add_pooling_layer:
            raise ValueError("XLNet has no pooler: its sentence vector is a summary of the last token's state")
        super().__init__()
        self.check_model_type(config)
        self.config = config
        self.word_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.mask_emb = nn.Parameter(torch.empty(1, 1, config.hidden_size))
        self.layer = nn.ModuleList(XLNetLayer(config) for _ in range(config.num_hidden_layers))
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.gradient_checkpointing = False  # training keeps each layer's inputs only (Pretrained's switch)
        self.init_weights()

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "XLNetModel"

    def check_inputs(self, input_ids, attention_mask, mems, perm_mask, target_mapping, token_type_ids,
                     mem_len, use_mems) -> int:
        """Shapes and values of every input against the batch; returns the memory length."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError("input_ids must be a (batch, sequence) tensor of token ids")
        batch, qlen = input_ids.shape
        if input_ids.numel() and not 0 <= int(input_ids.min()) <= int(input_ids.max()) < self.config.vocab_size:
            raise ValueError(f"input_ids must lie in [0, {self.config.vocab_size}) (vocab_size)")
        for name, value in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if value is not None and tuple(value.shape) != (batch, qlen):
                raise ValueError(f"{name} has shape {tuple(value.shape)}, input_ids {(batch, qlen)}")
        if perm_mask is not None:
            check_perm_mask(perm_mask, batch, qlen)
        if target_mapping is not None and (target_mapping.dim() != 3 or target_mapping.shape[0] != batch
                                           or target_mapping.shape[2] != qlen):
            raise ValueError(f"target_mapping must be (batch, predictions, sequence) = ({batch}, m, {qlen}), got "
                             f"{tuple(target_mapping.shape)}")
        if mem_len is not None:
            if not isinstance(mem_len, int) or isinstance(mem_len, bool) or mem_len < 0:
                raise ValueError(f"mem_len must be an integer ≥ 0 (0: keep everything), got {mem_len!r}")
            if not use_mems:
                raise ValueError("mem_len sets how much memory use_mems=True returns; it was given without use_mems")
            if self.config.mem_len is None:
                raise ValueError("mem_len was given but this model was trained without memory (config.mem_len is "
                                 "None): its layers never learned to read a previous segment")
        if self.config.bi_data and batch % 2:
            raise ValueError(f"bi_data reads half the batch forwards and half backwards: the batch ({batch}) must "
                             "be even")
        if mems is None:
            return 0
        if len(mems) != len(self.layer):
            raise ValueError(f"mems holds {len(mems)} tensors; the model has {len(self.layer)} layers")
        mlen = mems[0].shape[0]
        for memory in mems:
            if memory.dim() != 3 or tuple(memory.shape) != (mlen, batch, self.config.hidden_size):
                raise ValueError(f"each of mems must be (memory length, batch, hidden) = ({mlen}, {batch}, "
                                 f"{self.config.hidden_size}), got {tuple(memory.shape)}")
        return mlen

    def attention_masks(self, batch: int, qlen: int, mlen: int, attention_mask, perm_mask, device
                        ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(content-stream mask, query-stream mask), each (batch, qlen, mlen + qlen) with 1 = hidden, or None:
        causal ("uni"), padding and the permutation hide keys; the content stream also sees its own token."""
        parts = []
        if self.config.attn_type == "uni":
            causal = torch.ones(qlen, qlen + mlen, device=device).triu_(mlen + 1)
            if self.config.same_length:  # hide the far past too: every row sees the same mlen + 1 positions
                causal[:, :qlen] += torch.ones(qlen, qlen, device=device).tril_(-1)
            parts.append(causal[None])
        data = None
        if attention_mask is not None:
            data = (1.0 - attention_mask.to(torch.float32))[:, None, :]
        if perm_mask is not None:
            data = perm_mask.to(torch.float32) if data is None else data + perm_mask.to(torch.float32)
        if data is not None:  # memory is always visible
            parts.append(torch.cat([data.new_zeros(data.shape[0], data.shape[1], mlen), data], dim=2))
        if not parts:
            return None, None
        mask_g = (sum(parts).expand(batch, qlen, qlen + mlen) > 0).float()
        own = torch.cat([torch.zeros(qlen, mlen, device=device), torch.eye(qlen, device=device)], dim=1)
        return ((mask_g - own) > 0).float(), mask_g

    def position_encoding(self, batch: int, qlen: int, klen: int, device) -> torch.Tensor:
        """The relative sinusoids (batch, R, hidden); with ``bi_data`` the second half of the batch reads backwards."""
        config = self.config
        distances = relative_positions(qlen, klen, config.attn_type, config.clamp_len, config.bi_data, device)
        encoding = sinusoid_encoding(distances, config.hidden_size)
        if config.bi_data:
            return encoding.repeat_interleave(batch // 2, dim=0)
        return encoding.expand(batch, -1, -1)

    def cache(self, layer_input: torch.Tensor, memory: torch.Tensor | None, mem_len: int | None) -> torch.Tensor:
        """The next segment's memory of one layer: [memory; the first reuse_len inputs], the last mem_len of it
        (everything when mem_len is None or 0), as (length, batch, hidden), out of the graph."""
        current = layer_input.transpose(0, 1)
        if self.config.reuse_len:
            current = current[: self.config.reuse_len]
        joined = current if memory is None else torch.cat([memory, current], dim=0)
        return (joined[-mem_len:] if mem_len else joined).detach()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False, *, mems: list[torch.Tensor] | tuple[torch.Tensor, ...] | None = None,
                perm_mask: torch.Tensor | None = None, target_mapping: torch.Tensor | None = None,
                use_mems: bool | None = None, mem_len: int | None = None) -> XLNetModelOutput:
        """Encode a segment after ``mems``; with ``target_mapping`` the output is the query stream, one row per
        prediction. ``use_mems`` (default: config.use_mems_train / _eval) returns the next memory, its length
        ``mem_len`` (default config.mem_len) — only on a model trained with memory. The positional order is every
        bertkit encoder's (fine-tuning heads call them alike), not transformers' (``mems`` third): pass XLNet's
        own inputs by name."""
        if use_mems is None:
            use_mems = self.config.use_mems_train if self.training else self.config.use_mems_eval
        mlen = self.check_inputs(input_ids, attention_mask, mems, perm_mask, target_mapping, token_type_ids,
                                 mem_len, use_mems)
        keep = self.config.mem_len if mem_len is None else mem_len
        batch, qlen = input_ids.shape
        device = input_ids.device
        layer_mems = list(mems) if mems is not None else [None] * len(self.layer)
        mask_h, mask_g = self.attention_masks(batch, qlen, mlen, attention_mask, perm_mask, device)
        h = self.dropout(self.word_embedding(input_ids))
        g = None
        if target_mapping is not None:
            target_mapping = target_mapping.to(h.dtype)
            g = self.dropout(self.mask_emb.expand(batch, target_mapping.shape[1], -1))
        segments = None
        if token_type_ids is not None:  # one-hot of "not in the same segment"; memory counts as segment 0
            keys = torch.cat([token_type_ids.new_zeros(batch, mlen), token_type_ids], dim=1)
            segments = nn.functional.one_hot((token_type_ids[:, :, None] != keys[:, None, :]).long(), 2).to(h.dtype)
        pos_emb = self.dropout(self.position_encoding(batch, qlen, qlen + mlen, device).to(h.dtype))
        new_mems, hidden, attentions = [], [], []
        for layer, memory in zip(self.layer, layer_mems, strict=True):
            if use_mems:
                new_mems.append(self.cache(h, memory, keep))
            hidden += [h] if g is None else [h, g]
            memory_in = None if memory is None else memory.transpose(0, 1)
            inputs = (h, g, mask_h, mask_g, pos_emb, segments, memory_in, target_mapping)
            if self.gradient_checkpointing and self.training:  # recomputed in the backward pass, dropout replayed
                h, g, probs = checkpoint(layer, *inputs, use_reentrant=False)
            else:
                h, g, probs = layer(*inputs)
            attentions.append(probs[0] if len(probs) == 1 else probs)
        hidden += [h] if g is None else [h, g]
        return XLNetModelOutput(self.dropout(h if g is None else g), tuple(new_mems) if use_mems else None,
                                tuple(hidden) if output_hidden_states else None,
                                tuple(attentions) if output_attentions else None)


class XLNetLMHeadModel(XLNetPretrained):
    """XLNet with its LM head ``lm_loss`` (weight tied to the word embeddings, a bias of its own)."""

    def __init__(self, config: XLNetConfig):
        super().__init__()
        self.config = config
        self.transformer = XLNetModel(config)
        self.lm_loss = nn.Linear(config.hidden_size, config.vocab_size)
        self.init_weights()
        self.lm_loss.weight = self.transformer.word_embedding.weight

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "XLNetLMHeadModel"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False, *,
                mems: list[torch.Tensor] | tuple[torch.Tensor, ...] | None = None,
                perm_mask: torch.Tensor | None = None, target_mapping: torch.Tensor | None = None,
                use_mems: bool | None = None, mem_len: int | None = None) -> XLNetLMHeadModelOutput:
        """Logits for each position (each prediction with ``target_mapping``); the cross-entropy over labels that
        are not -100, labels shaped as the logits' rows (batch, positions or predictions). XLNet's own inputs by
        name, as in ``XLNetModel``."""
        out = self.transformer(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                               mems=mems, perm_mask=perm_mask, target_mapping=target_mapping, use_mems=use_mems,
                               mem_len=mem_len)
        logits = self.lm_loss(out.last_hidden_state)
        if labels is not None and tuple(labels.shape) != tuple(logits.shape[:2]):
            raise ValueError(f"labels must be (batch, {'predictions' if target_mapping is not None else 'sequence'})"
                             f" = {tuple(logits.shape[:2])}, got {tuple(labels.shape)}")
        loss = mlm_loss(logits, labels) if labels is not None else None
        return XLNetLMHeadModelOutput(loss, logits, out.mems, out.hidden_states, out.attentions)


def check_perm_mask(perm_mask: torch.Tensor, batch: int, qlen: int) -> None:
    """A permutation mask is (batch, seq, seq) of 0 / 1 whose "j comes strictly before i" relation (i sees j, j does
    not see i) has no cycle, i.e. some factorisation order produces it; anything else is a clear error."""
    if perm_mask.dim() != 3 or tuple(perm_mask.shape) != (batch, qlen, qlen):
        raise ValueError(f"perm_mask must be (batch, sequence, sequence) = ({batch}, {qlen}, {qlen}), got "
                         f"{tuple(perm_mask.shape)}")
    if not ((perm_mask == 0) | (perm_mask == 1)).all():
        raise ValueError("perm_mask must hold only 0 (may attend) and 1 (may not attend)")
    sees = perm_mask == 0
    before = (sees & ~sees.transpose(1, 2)).float()  # before[b, i, j]: j precedes i in the factorisation order
    waiting = before.sum(-1)  # each token's predecessors not yet peeled (small integers: exact in float)
    # masks from an order (transitive) are sorted by their predecessor counts: checked in one pass
    position = waiting.argsort(-1).argsort(-1)
    if not (before.bool() & (position[:, None, :] >= position[:, :, None])).any():
        return
    remaining = torch.ones(batch, qlen, dtype=torch.bool, device=perm_mask.device)
    while remaining.any():  # peel the tokens nothing remaining precedes; a cycle leaves some forever
        first = remaining & (waiting == 0)
        if not first.any():
            raise ValueError("perm_mask is not a permutation mask: its 'j before i' relation has a cycle, so no "
                             "factorisation order produces it (perm_mask[b, i, j] = 1 means i may not see j)")
        remaining &= ~first
        waiting = waiting - (before @ first.float()[..., None])[..., 0]
