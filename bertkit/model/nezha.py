"""NEZHA (Wei et al. 2019, Huawei): BERT whose positions are functional relative encodings inside attention —
fixed sinusoidal vectors of the clipped distance j − i added to the keys and the values (``relative_positions.py``,
``position_embedding_type: nezha``), no position table in the embeddings. Pretrained with whole-word masking.
Names are transformers 4's ``NezhaModel`` (BERT's, prefix ``nezha``); transformers 5 no longer ships it."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM, ForPreTraining


class NezhaModel(EncoderModel):
    """The NEZHA encoder: word and segment embeddings, relative positions in every attention block, a pooler."""

    model_type = "nezha"


class NezhaForPreTraining(ForPreTraining):
    """NEZHA with the MLM and NSP heads."""

    model_type = "nezha"
    base_class = NezhaModel


class NezhaForMaskedLM(ForMaskedLM):
    """NEZHA with the masked-LM head only."""

    model_type = "nezha"
    base_class = NezhaModel
