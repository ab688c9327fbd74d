"""``model.generate(input_ids, …)``: transformers' call on any bertkit model that can build a :class:`Stepper`."""

from __future__ import annotations

from typing import Any

import torch

from .config import GenerationConfig
from .search import Streamer, generate
from .stepper import CausalLMStepper, Stepper


class GenerationMixin:
    """Adds ``generate``; a model overrides :meth:`stepper` (an encoder-decoder encodes its source there) and
    :meth:`generation_config` (its stop and pad tokens)."""

    def generation_config(self) -> GenerationConfig:
        """The model's defaults: its config's end-of-text token stops generation (if inside the vocabulary)."""
        config = self.config
        eos = config.eos_token_id
        stops = [eos] if eos is not None and eos < config.vocab_size else []
        pad = config.pad_token_id if config.pad_token_id is not None and config.pad_token_id < config.vocab_size \
            else None
        return GenerationConfig(eos_token_id=stops, pad_token_id=pad)

    def stepper(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                config: GenerationConfig) -> Stepper:
        """What decodes this model step by step: a decoder-only LM's is :class:`CausalLMStepper`."""
        return CausalLMStepper(self, attention_mask, use_cache=config.use_cache)

    def check_prompt(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     config: GenerationConfig) -> None:
        """Refuse prompts the model cannot continue, naming the problem, before any work."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError("input_ids must be a 2-D (batch, tokens) tensor of token ids")
        if input_ids.shape[1] == 0:
            raise ValueError("empty prompt: give at least one token (GPT-2 starts from its <|endoftext|> token)")
        vocab = self.config.vocab_size
        if int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab:
            raise ValueError(f"token ids must lie in [0, {vocab}); got {int(input_ids.min())}..{int(input_ids.max())}")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")
        positions = self.config.max_position_embeddings
        total = input_ids.shape[1] + config.max_new_tokens
        if total > positions:
            raise ValueError(f"a prompt of {input_ids.shape[1]} tokens + max_new_tokens={config.max_new_tokens} "
                             f"needs {total} positions but the model has {positions}: shorten the prompt (keep its "
                             "last tokens) or lower max_new_tokens")
        config.check_vocabulary(vocab)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 generation_config: GenerationConfig | None = None, streamer: Streamer | None = None,
                 generator: torch.Generator | None = None, **settings: Any) -> torch.Tensor:
        """Continue each row of ``input_ids`` (left-padded, with its ``attention_mask``, for a batch of different
        lengths); returns (rows, prompt + new) token ids, as transformers' ``generate``. ``settings``:
        ``max_new_tokens``, ``do_sample``, ``num_beams``, ``temperature``, ``top_k``, ``top_p``,
        ``repetition_penalty``, ``length_penalty``, ``early_stopping``, ``eos_token_id``, ``pad_token_id``,
        ``use_cache`` (:class:`GenerationConfig`)."""
        config = (generation_config or self.generation_config()).replace(**settings)
        self.check_prompt(input_ids, attention_mask, config)
        was_training = self.training
        self.eval()
        try:
            return generate(self.stepper(input_ids, attention_mask, config), input_ids, config, streamer, generator)
        finally:
            self.train(was_training)
