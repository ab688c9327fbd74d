"""T5Config: the encoder-decoder's config with T5's block switches set (``model/t5.py`` builds it); its
``config.json`` fields and weight names are in ``model/t5_architecture.py``, its published sizes in
``config.ARCHITECTURE_PRESETS["t5"]``."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Seq2SeqConfig


@dataclass
class T5Config(Seq2SeqConfig):
    """T5 (Raffel et al. 2020) on the shared blocks: pre-LN with RMS norms, no biases, unscaled attention, a
    bucketed relative bias computed once per stack, dropout after each stack's final norm; v1.1 gates its GELU."""

    vocab_size: int = 32128
    hidden_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    attention_head_size: int | None = 64
    hidden_act: str = "relu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    activation_dropout: float = 0.1
    layer_norm_eps: float = 1e-6
    max_position_embeddings: int = 1 << 20  # no position table: the relative bias reaches any length
    type_vocab_size: int = 0
    pad_token_id: int | None = 0
    eos_token_id: int | None = 1
    model_type: str = "t5"
    position_embedding_type: str = "relative_bias"
    norm_first: bool = True
    norm_type: str = "rms"
    use_bias: bool = False
    scale_attention: bool = False
    final_dropout: bool = True
    scale_embedding: bool = False
    embedding_layer_norm: bool | None = False
    final_layer_norm: bool | None = True
    scale_decoder_outputs: bool | None = None  # decoder states × d_model^-0.5 before the head; None: when tied

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings
        if not self.hidden_dropout_prob == self.attention_probs_dropout_prob == self.activation_dropout:
            raise ValueError("T5 has one dropout_rate: hidden_dropout_prob, attention_probs_dropout_prob and "
                             f"activation_dropout must be equal, got {self.hidden_dropout_prob}, "
                             f"{self.attention_probs_dropout_prob}, {self.activation_dropout}")
        if self.decoder_attention_heads != self.num_attention_heads or self.decoder_ffn_dim != self.intermediate_size:
            raise ValueError("T5's decoder has the encoder's heads and d_ff (num_heads, d_ff)")
        if self.gated_feed_forward and self.hidden_act == "gelu":
            raise ValueError("a gated exact GELU has no T5 name (feed_forward_proj 'gated-gelu' is the tanh GELU, "
                             "hidden_act 'gelu_new')")
