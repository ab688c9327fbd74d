"""XLM (Lample & Conneau 2019): a cross-lingual BERT — post-LN layers, learned positions, and a language embedding
added to every token (``n_langs`` > 1 with ``use_lang_emb``; the forward takes ``langs``), pretrained with masked
LM on monolingual text and translation LM (TLM) on a sentence concatenated with its translation.

What differs from BERT, as transformers' ``XLMModel`` computes it: no segment table — segment ids, when given, index
the word embeddings; without an ``attention_mask`` the padding token (``pad_index``) is masked; no pooler; the LM
head is one tied projection (``pred_layer.proj``) without BERT's transform. transformers also zeroes the hidden
states of padded positions, which no real position reads; bertkit leaves them as computed.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoder import BertModelOutput, EncoderModel
from .heads import MaskedLMOutput, mlm_loss
from .pretrained import Pretrained


class XLMModel(EncoderModel):
    """The XLM encoder: ``last_hidden_state`` for every token (no pooler)."""

    model_type = "xlm"

    def __init__(self, config, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False, *, langs: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, lengths: torch.Tensor | None = None,
                **kwargs) -> BertModelOutput:
        """Encode a batch; ``langs`` (batch, seq): each token's language; ``lengths`` (batch,): real tokens per row
        (instead of ``attention_mask``; without either, the padding token is masked). The positional order is every
        bertkit encoder's (fine-tuning heads call them alike), not transformers' (``langs`` third): pass ``langs``,
        ``position_ids`` and ``lengths`` by name."""
        if kwargs:
            raise TypeError(f"XLMModel.forward got unexpected arguments {sorted(kwargs)}")
        if attention_mask is None and isinstance(input_ids, torch.Tensor) and input_ids.dim() == 2:
            if lengths is not None:
                attention_mask = (torch.arange(input_ids.shape[1], device=input_ids.device)[None]
                                  < lengths[:, None]).long()
            elif self.config.pad_token_id is not None:
                attention_mask = input_ids.ne(self.config.pad_token_id).long()
        if langs is not None:
            self.check_langs(langs, input_ids)
        return super().forward(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                               position_ids=position_ids, langs=langs)

    def check_langs(self, langs: torch.Tensor, input_ids: torch.Tensor) -> None:
        """One language id per token, each below ``n_langs`` (a model without a language table, XLM-17 / -100 or a
        one-language XLM, reads none of them, as in transformers)."""
        if tuple(langs.shape) != tuple(input_ids.shape):
            raise ValueError(f"langs has shape {tuple(langs.shape)}, input_ids {tuple(input_ids.shape)}")
        if self.embeddings.lang_embeddings is None or not langs.numel():
            return
        if not 0 <= int(langs.min()) <= int(langs.max()) < self.config.n_langs:
            raise ValueError(f"langs must lie in [0, {self.config.n_langs}) (n_langs)")

    def check_inputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     token_type_ids: torch.Tensor | None, past: int = 0) -> torch.Tensor | None:
        """BERT's checks; segment ids are word ids here (transformers adds their word embeddings)."""
        super().check_inputs(input_ids, attention_mask, None, past)
        if token_type_ids is not None:
            if tuple(token_type_ids.shape) != tuple(input_ids.shape):
                raise ValueError(f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids "
                                 f"{tuple(input_ids.shape)}")
            if token_type_ids.numel() and not 0 <= int(token_type_ids.min()) <= int(token_type_ids.max()) \
                    < self.config.vocab_size:
                raise ValueError(f"XLM's token_type_ids index the word embeddings: they must lie in "
                                 f"[0, {self.config.vocab_size})")
        return token_type_ids


class XLMPredLayer(nn.Module):
    """XLM's LM head: one projection to the vocabulary, its weight tied to the word embeddings."""

    def __init__(self, config):
        super().__init__()
        self.proj = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)


class XLMWithLMHeadModel(Pretrained):
    """XLM with its (masked or translation) LM head: ``logits`` for every position, the loss when labels are given."""

    model_type = "xlm"

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = XLMModel(config)
        self.pred_layer = XLMPredLayer(config)
        self.init_weights()
        self.pred_layer.proj.weight = self.transformer.embeddings.word_embeddings.weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                output_hidden_states: bool = False, output_attentions: bool = False, *,
                langs: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None) -> MaskedLMOutput:
        """Vocabulary logits; the cross-entropy over positions whose label is not -100 (``langs``, ``position_ids``,
        ``lengths``: by name, as in ``XLMModel``)."""
        out = self.transformer(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions,
                               langs=langs, position_ids=position_ids, lengths=lengths)
        logits = self.pred_layer(out.last_hidden_state)
        loss = mlm_loss(logits, labels) if labels is not None else None
        return MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)
