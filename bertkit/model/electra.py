"""ELECTRA (Clark et al. 2020): a small generator fills masked positions (an MLM), and the discriminator — the
model kept — learns for every token whether it was replaced, so every position teaches, not only the 15 % masked.
Both are BERT encoders without a pooler, with embeddings of width ``embedding_size`` projected to the hidden size
when the two differ (``embeddings_project``); the generator's MLM transform uses the exact GELU."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM, ForReplacedTokenDetection


class ElectraModel(EncoderModel):
    """The ELECTRA encoder (no pooler, as transformers' ``ElectraModel``)."""

    model_type = "electra"

    def __init__(self, config, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=add_pooling_layer)


class ElectraForPreTraining(ForReplacedTokenDetection):
    """The discriminator: a replaced / original logit per token (transformers' name for it)."""

    model_type = "electra"
    base_class = ElectraModel


class ElectraForMaskedLM(ForMaskedLM):
    """The generator: an MLM whose head projects H → E and decodes with the tied E-wide embeddings."""

    model_type = "electra"
    base_class = ElectraModel
    mlm_act = "gelu"
