"""RoBERTa (Liu et al. 2019): BERT's blocks trained longer, on full sentences with dynamic masking and no NSP.

What differs in the model: position ids count real tokens from ``pad_token_id + 1`` (so ``max_position_embeddings``
is the longest input + pad + 1, 514 for 512 tokens), one segment type, and the MLM head (``lm_head``) always uses
the exact GELU. The byte-level BPE tokenizer is separate (bertkit's RoBERTa shape also trains on WordPiece)."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM


class RobertaModel(EncoderModel):
    """The RoBERTa encoder (with BERT's pooler, as transformers' ``RobertaModel``)."""

    model_type = "roberta"
    count_positions_after_padding = True


class RobertaForMaskedLM(ForMaskedLM):
    """RoBERTa with its masked-LM head (``lm_head``); also the model RoBERTa pretraining trains."""

    model_type = "roberta"
    base_class = RobertaModel
    mlm_act = "gelu"
