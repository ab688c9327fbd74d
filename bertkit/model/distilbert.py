"""DistilBERT (Sanh et al. 2019): BERT distilled to half the layers — no segment embeddings, no pooler, positions
learned or fixed sinusoids (``sinusoidal_pos_embds``), and no dropout after the attention's output projection.
transformers names its modules differently (``transformer.layer.N.attention.q_lin``, ``ffn.lin1``, …): the map in
``architectures.py`` translates, the blocks are BERT's."""

from __future__ import annotations

from .encoder import EncoderModel
from .language_models import ForMaskedLM


class DistilBertModel(EncoderModel):
    """The DistilBERT encoder."""

    model_type = "distilbert"

    def __init__(self, config, add_pooling_layer: bool = False):
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        for layer in self.encoder.layer:  # the attention half ends without dropout here
            layer.attention.output.dropout.p = 0.0


class DistilBertForMaskedLM(ForMaskedLM):
    """DistilBERT with its masked-LM head (``vocab_transform``, ``vocab_layer_norm``, ``vocab_projector``)."""

    model_type = "distilbert"
    base_class = DistilBertModel
