"""BERT as a causal language model: the encoder with ``is_decoder`` (causal self-attention) and its masked-LM head
predicting the next token instead of a masked one — transformers' ``BertLMHeadModel``, with ``generate``."""

from __future__ import annotations

import torch

from ..config import BertConfig
from ..generation.kv_cache import KVCache
from ..generation.mixin import GenerationMixin
from .bert import BertModel
from .gpt2 import CausalLMOutput, next_token_output
from .language_models import ForMaskedLM


class BertLMHeadModel(ForMaskedLM, GenerationMixin):
    """BERT decoder + LM head (``cls.predictions``, tied to the word embeddings): next-token logits."""

    model_type = "bert"
    base_class = BertModel

    def __init__(self, config: BertConfig):
        if not config.is_decoder:
            raise ValueError("BertLMHeadModel predicts the next token: its config needs is_decoder: true (causal "
                             "self-attention); for masked-LM use BertForMaskedLM")
        super().__init__(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        logits_to_keep: int = 0,
    ) -> CausalLMOutput:
        """Logits of the next token at each position (the last ``logits_to_keep`` only, if > 0); the shifted
        cross-entropy when ``labels`` are given, as transformers'."""
        out = self.base_model(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                              past_key_values=past_key_values, use_cache=use_cache, position_ids=position_ids)
        return next_token_output(out, self.cls.predictions, labels, logits_to_keep)
