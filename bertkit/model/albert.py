"""ALBERT (Lan et al. 2020): BERT with far fewer parameters — a factorized embedding (vocabulary → E, then a
projection E → H, since E ≪ H) and cross-layer sharing (``num_hidden_groups`` groups of ``inner_group_num`` layers
applied ``num_hidden_layers`` times: ALBERT-base has one layer, applied 12 times). Pretrained with MLM + sentence-
order prediction (SOP: are the two segments in their original order?), whose head drops out the pooled vector.
"""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM, ForPreTraining


class AlbertModel(EncoderModel):
    """The ALBERT encoder: E-wide embeddings, ``embeddings_project`` to H, shared layers, a pooler."""

    model_type = "albert"
    always_project_embeddings = True


class AlbertForPreTraining(ForPreTraining):
    """ALBERT with the MLM head (H → E → vocabulary, tied) and the SOP classifier."""

    model_type = "albert"
    base_class = AlbertModel
    pooled_dropout = True


class AlbertForMaskedLM(ForMaskedLM):
    """ALBERT with the masked-LM head only."""

    model_type = "albert"
    base_class = AlbertModel
