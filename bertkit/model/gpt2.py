"""GPT-2 (Radford et al. 2019): the shared blocks as a causal language model — pre-LN layers (``norm_first``) with a
final LayerNorm, causal self-attention (``is_decoder``), learned positions, no segments, and an LM head that *is*
the word-embedding matrix (no transform, no bias). The architecture's config fields and names are in
``architectures.py``; this file adds the head and GPT-2's on-disk layout.

GPT-2 stores its projections as ``Conv1D``: weights (in, out), the transpose of ``nn.Linear``'s, and query, key and
value fused into one ``c_attn``. :func:`from_hf_layout` / :func:`to_hf_layout` convert between the two layouts on
loading and saving, so a folder maps one to one to transformers' ``GPT2LMHeadModel``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..generation.kv_cache import KVCache
from ..generation.mixin import GenerationMixin
from . import kernels
from .encoder import EncoderModel
from .heads import IGNORE_INDEX
from .pretrained import Pretrained

_CONV1D = re.compile(r"\.(c_attn|c_proj|c_fc)\.weight$")  # GPT-2's (in, out) weights
_FUSED = re.compile(r"\.c_attn\.(weight|bias)$")
_BUFFERS = re.compile(r"\.attn\.(masked_)?bias$")  # old checkpoints store the causal mask as a buffer
QKV = ("query", "key", "value")


def from_hf_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' GPT-2 tensors → bertkit's layout: Conv1D weights transposed, ``c_attn`` split into
    ``c_attn.query`` / ``.key`` / ``.value`` (the names ``architectures.py`` maps bertkit's modules to)."""
    out = {}
    for name, tensor in state.items():
        if _BUFFERS.search(name):
            continue
        if _CONV1D.search(name):
            tensor = tensor.t()
        if _FUSED.search(name):
            stem, kind = name.rsplit(".", 1)
            for part, chunk in zip(QKV, tensor.chunk(3, dim=0), strict=True):
                out[f"{stem}.{part}.{kind}"] = chunk
        else:
            out[name] = tensor
    return out


def to_hf_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """bertkit's layout → transformers' GPT-2 tensors (the inverse of :func:`from_hf_layout`)."""
    out = {}
    for name, tensor in state.items():
        match = re.search(r"\.c_attn\.(query|key|value)\.(weight|bias)$", name)
        if match is None:
            out[name] = tensor.t() if _CONV1D.search(name) else tensor
        elif match.group(1) == "query":  # fused once, when its first part comes by
            stem = name[: match.start()] + ".c_attn"
            fused = torch.cat([state[f"{stem}.{part}.{match.group(2)}"] for part in QKV], dim=0)
            out[f"{stem}.{match.group(2)}"] = fused.t() if match.group(2) == "weight" else fused
    return out


class GPT2Model(EncoderModel):
    """The GPT-2 transformer: token + position embeddings, causal pre-LN layers, final LayerNorm (``ln_f``)."""

    model_type = "gpt2"
    pad_words = False

    def __init__(self, config: BertConfig, add_pooling_layer: bool = False):
        if add_pooling_layer:
            raise ValueError("GPT-2 has no pooler (no [CLS] token): use add_pooling_layer=False")
        super().__init__(config, add_pooling_layer=False)
        scale_residual_projections(self, config)

    from_hf_layout = staticmethod(from_hf_layout)
    to_hf_layout = staticmethod(to_hf_layout)


def scale_residual_projections(model: nn.Module, config: BertConfig) -> None:
    """GPT-2's initialisation: the projections that write into the residual stream start with std / √(2·layers),
    so the stream's variance does not grow with depth."""
    std = config.initializer_range / math.sqrt(2 * config.num_hidden_layers)
    for name, parameter in model.named_parameters():
        if name.endswith(("attention.output.dense.weight", "output.dense.weight")):
            nn.init.normal_(parameter, std=std)


@dataclass
class CausalLMOutput:
    """Next-token logits for every position (or the last ``logits_to_keep``), the loss, the extended cache."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    past_key_values: KVCache | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of position i's logits against token i + 1 (labels are the inputs, as transformers')."""
    shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    return F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def next_token_output(out, head: Callable[[torch.Tensor], torch.Tensor], labels: torch.Tensor | None,
                      logits_to_keep: int) -> CausalLMOutput:
    """A decoder's output under its LM ``head``: the last ``logits_to_keep`` positions' logits (all when 0) and,
    given ``labels``, the shifted loss — the tail every causal LM shares."""
    hidden = out.last_hidden_state[:, -logits_to_keep:] if logits_to_keep else out.last_hidden_state
    logits = head(hidden)
    loss = causal_lm_loss(logits, labels) if labels is not None else None
    return CausalLMOutput(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


class GPT2LMHeadModel(Pretrained, GenerationMixin):
    """GPT-2 with its language-model head (tied to ``wte``): ``logits`` for the next token at every position,
    ``generate`` for text."""

    model_type = "gpt2"

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.embeddings.word_embeddings.weight  # tied, as GPT-2's
        self.init_weights()
        scale_residual_projections(self, config)

    from_hf_layout = staticmethod(from_hf_layout)
    to_hf_layout = staticmethod(to_hf_layout)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        logits_to_keep: int = 0,
    ) -> CausalLMOutput:
        """Logits of the next token at each position; the loss when ``labels`` (usually ``input_ids``, -100 where
        not predicted) are given; ``logits_to_keep`` > 0: only the last positions' logits (generation)."""
        out = self.transformer(input_ids, attention_mask, output_hidden_states=output_hidden_states,
                               output_attentions=output_attentions, past_key_values=past_key_values,
                               use_cache=use_cache, position_ids=position_ids)
        return next_token_output(out, lambda hidden: kernels.linear(self.lm_head, hidden), labels, logits_to_keep)
