"""RoFormer (Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding"): BERT whose positions
are rotary embeddings inside every attention block (``rotary.py``, ``position_embedding_type: rotary``), with no
position table in the embeddings and no pooler; ``embedding_size`` below ``hidden_size`` is projected up
(``embeddings_project``), as in ELECTRA. The rotation angles are read from the encoder's fixed sinusoid table
``encoder.embed_positions`` (transformers' layout), and ``rotary_value`` rotates the values too.
Names are transformers' ``RoFormerModel`` / ``RoFormerForMaskedLM`` (BERT's, prefix ``roformer``)."""

from __future__ import annotations

from ..config import BertConfig
from .encoder import EncoderModel
from .language_models import ForMaskedLM
from .rotary import RotaryTable


class RoFormerModel(EncoderModel):
    """The RoFormer encoder: word and segment embeddings, rotary positions in every self-attention, no pooler."""

    model_type = "roformer"

    def __init__(self, config: BertConfig, add_pooling_layer: bool = False):
        if add_pooling_layer:
            raise ValueError("RoFormer has no pooler (transformers' RoFormerModel has none): use "
                             "add_pooling_layer=False")
        super().__init__(config, add_pooling_layer=False)
        self.encoder.embed_positions = RotaryTable(config)  # one table, read by every layer
        for layer in self.encoder.layer:
            layer.attention.self.rotary.use_table(self.encoder.embed_positions)


class RoFormerForMaskedLM(ForMaskedLM):
    """RoFormer with the masked-LM head (transform to ``embedding_size``, decoder tied to the word embeddings)."""

    model_type = "roformer"
    base_class = RoFormerModel
