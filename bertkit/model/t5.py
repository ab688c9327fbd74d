"""T5 (Raffel et al. 2020): the encoder-decoder of ``seq2seq.py`` with T5's switches (``config.T5Config``): pre-LN
blocks with RMS norms and no biases, unscaled attention, a bucketed relative bias computed once per stack (causal
in the decoder, none in cross-attention), dropout after each stack's final norm; v1.1 gates a tanh GELU.

What is T5's own here is small: its shared embedding trains the padding row (the decoder starts from the pad token)
and, when the head is tied to it, the decoder's states are scaled by d_model^-0.5 before the head. Names map one
to one onto transformers' ``T5Model`` / ``T5ForConditionalGeneration`` (``architectures.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..t5_config import T5Config
from .seq2seq import TransformerForConditionalGeneration, TransformerModel


class T5Model(TransformerModel):
    """transformers' ``T5Model``: the decoder's last hidden state."""

    model_type = "t5"
    config_class = T5Config

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared.padding_idx = None  # the pad token is the decoder's start token: its row is learned
        nn.init.normal_(self.shared.weight, std=config.initializer_range)

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "T5Model"


class T5ForConditionalGeneration(TransformerForConditionalGeneration):
    """transformers' ``T5ForConditionalGeneration``: logits, the loss with ``labels``, ``generate``."""

    model_type = "t5"
    config_class = T5Config
    encoder_decoder_class = T5Model

    def __init__(self, config: T5Config):
        if not isinstance(config, T5Config):
            raise ValueError(f"{type(self).__name__} needs a T5Config, got {type(config).__name__}")
        super().__init__(config)
        self.output_scale = config.hidden_size ** -0.5 if config.scale_decoder_outputs else None

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return "T5ForConditionalGeneration"

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decoder states → vocabulary logits (scaled first when the head is the embedding matrix, as in T5)."""
        return super().logits(hidden if self.output_scale is None else hidden * self.output_scale)
