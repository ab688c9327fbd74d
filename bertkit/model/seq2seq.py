"""The encoder-decoder Transformer (Vaswani et al. 2017) on the shared blocks: an encoder stack, a decoder stack
(causal self-attention, cross-attention: queries from the decoder, keys and values from the encoder's output), token
embeddings shared between source and target as an option, and an output projection tied to them as an option.

One model serves three layouts, each a config choice rather than a copy (``architectures.py``):
``transformer`` (bertkit's names; ``nn_transformer.py`` converts a ``torch.nn.Transformer``), ``bart`` (learned
positions from row 2, a LayerNorm on the embeddings) and ``marian`` (sinusoids in halves, √d scaling, SiLU).
Training is teacher forcing: the decoder reads the target shifted right behind ``decoder_start_token_id`` and
predicts every next token at once; decoding step by step reuses the ``KVCache`` of the decoder stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig, Seq2SeqConfig
from ..generation.config import GenerationConfig
from ..generation.kv_cache import KVCache
from ..generation.mixin import GenerationMixin
from ..generation.search import Streamer, generate
from ..generation.seq2seq_stepper import Seq2SeqStepper
from . import kernels
from .encoder import EncoderModel
from .heads import IGNORE_INDEX
from .pretrained import Pretrained


class Stack(EncoderModel):
    """One half of the encoder-decoder: an ``EncoderModel`` without pooler, of whichever ``model_type``."""

    model_type = None

    def check_model_type(self, config: BertConfig) -> None:
        """The stack is part of an encoder-decoder of any layout: nothing to check."""


@dataclass
class Seq2SeqOutput:
    """What the encoder-decoder returns (transformers' ``Seq2SeqLMOutput`` fields that bertkit fills)."""

    loss: torch.Tensor | None
    logits: torch.Tensor | None
    past_key_values: KVCache | None = None
    last_hidden_state: torch.Tensor | None = None  # the decoder's
    encoder_last_hidden_state: torch.Tensor | None = None


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Teacher forcing's decoder input: the start token, then the target without its last token (-100 → pad)."""
    shifted = labels.new_full(labels.shape, pad_token_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


class TransformerModel(Pretrained):
    """Encoder + decoder stacks (transformers' ``BartModel``): the decoder's last hidden state."""

    model_type = None  # any encoder-decoder layout: the config's model_type says which
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise ValueError(f"{type(self).__name__} needs a Seq2SeqConfig (an encoder-decoder), got "
                             f"{type(config).__name__}")
        self.config = config
        if config.share_encoder_decoder_embeddings:  # registered first: checkpoints store the matrix as `shared`
            self.shared = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.encoder = Stack(config.encoder_config(), add_pooling_layer=False)
        self.decoder = Stack(config.decoder_config(), add_pooling_layer=False)
        if config.share_encoder_decoder_embeddings:
            self.encoder.embeddings.word_embeddings = self.shared
            self.decoder.embeddings.word_embeddings = self.shared
        self.init_weights()

    @property
    def base_model_prefix(self) -> str:
        return "model"

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's output (the decoder's memory)."""
        return self.encoder(input_ids, attention_mask).last_hidden_state

    def decode(self, decoder_input_ids: torch.Tensor, memory: torch.Tensor, attention_mask: torch.Tensor | None,
               decoder_attention_mask: torch.Tensor | None = None, past_key_values: KVCache | None = None,
               use_cache: bool = False):
        """The decoder over ``decoder_input_ids`` (after any cached positions), attending to ``memory``."""
        return self.decoder(decoder_input_ids, decoder_attention_mask, encoder_hidden_states=memory,
                            encoder_attention_mask=attention_mask, past_key_values=past_key_values,
                            use_cache=use_cache)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, decoder_attention_mask: torch.Tensor | None = None,
                encoder_outputs: torch.Tensor | None = None, past_key_values: KVCache | None = None,
                use_cache: bool = False) -> Seq2SeqOutput:
        """Encode ``input_ids`` (or take ``encoder_outputs``), decode ``decoder_input_ids`` (default: the input
        shifted right, as transformers' BartModel)."""
        if decoder_input_ids is None:
            decoder_input_ids = shift_tokens_right(input_ids, self.config.pad_token_id,
                                                   self.config.decoder_start_token_id)
        memory = self.encode(input_ids, attention_mask) if encoder_outputs is None else encoder_outputs
        out = self.decode(decoder_input_ids, memory, attention_mask, decoder_attention_mask, past_key_values,
                          use_cache)
        return Seq2SeqOutput(None, None, out.past_key_values, out.last_hidden_state, memory)


class TransformerForConditionalGeneration(Pretrained, GenerationMixin):
    """The encoder-decoder with its output projection (transformers' ``BartForConditionalGeneration`` /
    ``MarianMTModel``): next-token logits at every target position; the cross-entropy with ``labels``;
    ``generate(input_ids, …)`` decodes from ``decoder_start_token_id`` (greedy, sampling, beam search)."""

    model_type = None
    config_class = Seq2SeqConfig
    encoder_decoder_class = TransformerModel  # the model under the head (T5: T5Model)

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.model = self.encoder_decoder_class(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:  # one matrix reads target tokens in and writes them out
            self.lm_head.weight = self.model.decoder.embeddings.word_embeddings.weight
        if config.add_final_logits_bias:
            self.register_buffer("final_logits_bias", torch.zeros(1, config.vocab_size))
        else:
            self.final_logits_bias = None
        self.init_weights()

    @property
    def base_model_prefix(self) -> str:
        return "model"

    @property
    def architecture_name(self) -> str:
        """The class transformers loads a saved folder with."""
        return {"bart": "BartForConditionalGeneration", "marian": "MarianMTModel"}.get(
            self.config.model_type, type(self).__name__)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Decoder states → vocabulary logits."""
        logits = kernels.linear(self.lm_head, hidden)
        return logits if self.final_logits_bias is None else logits + self.final_logits_bias

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                decoder_input_ids: torch.Tensor | None = None, decoder_attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, encoder_outputs: torch.Tensor | None = None,
                past_key_values: KVCache | None = None, use_cache: bool = False) -> Seq2SeqOutput:
        """Teacher forcing: with ``labels`` (-100: not predicted) and no ``decoder_input_ids``, the decoder reads
        the labels shifted right behind ``decoder_start_token_id``; ``loss`` is the mean cross-entropy."""
        if input_ids is None and encoder_outputs is None:
            raise ValueError("give input_ids (the source) or encoder_outputs (its encoding)")
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("give decoder_input_ids or labels (teacher forcing shifts them right)")
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id,
                                                   self.config.decoder_start_token_id)
        out = self.model(input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs,
                         past_key_values, use_cache)
        logits = self.logits(out.last_hidden_state)
        loss = None
        if labels is not None:
            if labels.shape != decoder_input_ids.shape:
                raise ValueError(f"labels {tuple(labels.shape)} and decoder_input_ids "
                                 f"{tuple(decoder_input_ids.shape)} differ in shape")
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return Seq2SeqOutput(loss, logits, out.past_key_values, out.last_hidden_state,
                             out.encoder_last_hidden_state)

    # -- generation: the source is encoded once, the decoder starts from decoder_start_token_id ------------------
    def stepper(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                config: GenerationConfig) -> Seq2SeqStepper:
        """The source encoded, the decoder ready to step."""
        return Seq2SeqStepper(self, input_ids, attention_mask, use_cache=config.use_cache)

    def check_prompt(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     config: GenerationConfig) -> None:
        """Refuse sources the encoder cannot read and outputs longer than the decoder's positions."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError("input_ids must be a 2-D (batch, tokens) tensor of source token ids")
        if input_ids.shape[1] == 0:
            raise ValueError("empty source: give at least one token")
        positions = self.config.max_tokens
        if input_ids.shape[1] > positions:
            raise ValueError(f"the source has {input_ids.shape[1]} tokens but the model has only {positions} "
                             "positions: truncate it")
        if 1 + config.max_new_tokens > positions:
            raise ValueError(f"max_new_tokens={config.max_new_tokens} (+ the start token) needs "
                             f"{1 + config.max_new_tokens} decoder positions but the model has {positions}: lower it")
        if attention_mask is not None and tuple(attention_mask.shape) != tuple(input_ids.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
                             f"{tuple(input_ids.shape)}")
        self.model.encoder.check_inputs(input_ids, attention_mask, None)
        config.check_vocabulary(self.config.vocab_size)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 generation_config: GenerationConfig | None = None, streamer: Streamer | None = None,
                 generator: torch.Generator | None = None, **settings) -> torch.Tensor:
        """Translate each source row (right-padded, with its ``attention_mask``); returns (rows, 1 + new) decoder
        tokens starting with ``decoder_start_token_id``, as transformers' ``generate`` for encoder-decoders."""
        config = (generation_config or self.generation_config).replace(**settings)
        self.check_prompt(input_ids, attention_mask, config)
        was_training = self.training
        self.eval()
        try:
            start = torch.full((input_ids.shape[0], 1), self.config.decoder_start_token_id, dtype=torch.long,
                               device=input_ids.device)
            return generate(self.stepper(input_ids, attention_mask, config), start, config, streamer, generator)
        finally:
            self.train(was_training)
