"""BERT (Devlin et al. 2019): learned absolute positions, segment embeddings, post-LN layers, a pooler; pretrained
with masked-LM + next-sentence prediction. Every block is the shared one; transformers' names are BERT's own."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM, ForPreTraining


class BertModel(EncoderModel):
    """The BERT encoder: ``last_hidden_state`` for every token, ``pooler_output`` for the sequence."""

    model_type = "bert"


class BertForPreTraining(ForPreTraining):
    """BERT with both pretraining heads; ``loss = MLM cross-entropy + NSP cross-entropy``."""

    model_type = "bert"
    base_class = BertModel


class BertForMaskedLM(ForMaskedLM):
    """BERT with the masked-LM head only (no pooler, as in transformers)."""

    model_type = "bert"
    base_class = BertModel
