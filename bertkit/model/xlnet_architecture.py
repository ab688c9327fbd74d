"""XLNet's config (``XLNetConfig``), its ``config.json`` fields and transformers' names for its weights: the
``xlnet`` entry of ``architectures.py``; the model itself is ``xlnet.py``.

XLNet (Yang et al. 2019) keeps no position table (relative sinusoids reach any length) and no segment table (each
layer learns whether two tokens share a segment, ``seg_embed``); one ``dropout`` serves everywhere. Memory settings
(``mem_len``, ``reuse_len``, ``use_mems_*``) and the positional ones (``attn_type``, ``bi_data``, ``clamp_len``,
``same_length``) are XLNet's own fields, written under transformers' names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import BertConfig

ATTENTION_TYPES = ("bi", "uni")  # bidirectional (XLNet), or causal over memory and segment (Transformer-XL)


@dataclass
class XLNetConfig(BertConfig):
    """XLNet's sizes (defaults: xlnet-large-cased, as transformers' XLNetConfig) and memory / position settings."""

    vocab_size: int = 32000
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    attention_head_size: int | None = None  # d_head; must be hidden_size / heads
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float | None = None  # None: hidden_dropout_prob (XLNet has one dropout)
    activation_dropout: float | None = None  # None: hidden_dropout_prob
    max_position_embeddings: int = 1 << 20  # no position table: relative sinusoids reach any length
    type_vocab_size: int = 0  # no segment table: seg_embed inside each layer
    pad_token_id: int | None = 5
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    model_type: str = "xlnet"
    position_embedding_type: str = "none"
    mem_len: int | None = 512  # hidden states kept per layer for the next segment; None: the model has no memory
    reuse_len: int | None = None  # only the first reuse_len positions of a segment go into the memory
    attn_type: str = "bi"
    bi_data: bool = False  # half the batch reads positions forwards, half backwards (pretraining)
    clamp_len: int = -1  # relative distances beyond ±clamp_len share the last encoding; ≤ 0: no clamp
    same_length: bool = False  # "uni" only: every token attends to the same number of positions
    use_mems_eval: bool = True  # return the new memory in eval mode unless the call says otherwise
    use_mems_train: bool = False

    def __post_init__(self) -> None:
        for name in ("attention_probs_dropout_prob", "activation_dropout"):
            if getattr(self, name) is None:
                setattr(self, name, self.hidden_dropout_prob)
        if self.attention_head_size is None and isinstance(self.num_attention_heads, int) \
                and self.num_attention_heads > 0 and self.hidden_size % self.num_attention_heads == 0:
            self.attention_head_size = self.hidden_size // self.num_attention_heads
        super().__post_init__()
        self.check_xlnet_fields()

    def check_xlnet_fields(self) -> None:
        """XLNet's own fields: one dropout, d_head = d_model / n_head, memory and position settings in range."""
        if not self.hidden_dropout_prob == self.attention_probs_dropout_prob == self.activation_dropout:
            raise ValueError("XLNet has one dropout: hidden_dropout_prob, attention_probs_dropout_prob and "
                             f"activation_dropout must be equal, got {self.hidden_dropout_prob}, "
                             f"{self.attention_probs_dropout_prob}, {self.activation_dropout}")
        if self.attention_head_size * self.num_attention_heads != self.hidden_size:
            raise ValueError(f"XLNet's d_head must be d_model / n_head = {self.hidden_size} / "
                             f"{self.num_attention_heads}, got {self.attention_head_size}")
        for name in ("mem_len", "reuse_len"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"config.{name} must be None or an integer ≥ 0, got {value!r}")
        if self.attn_type not in ATTENTION_TYPES:
            raise ValueError(f"config.attn_type must be one of {ATTENTION_TYPES}, got {self.attn_type!r}")
        if not isinstance(self.clamp_len, int) or isinstance(self.clamp_len, bool):
            raise ValueError(f"config.clamp_len must be an integer (≤ 0: no clamp), got {self.clamp_len!r}")
        for name in ("bi_data", "same_length", "use_mems_eval", "use_mems_train"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"config.{name} must be true or false, got {getattr(self, name)!r}")
        if self.norm_first or self.position_embedding_type != "none" or self.type_vocab_size:
            raise ValueError("XLNet's blocks are post-LN with relative positions and no segment table: norm_first, "
                             "position_embedding_type and type_vocab_size keep their XLNet values")

    @classmethod
    def preset(cls, name: str, model_type: str = "xlnet", **overrides: Any) -> XLNetConfig:
        """xlnet-base-cased or xlnet-large-cased (their published config.json: no memory, mem_len null)."""
        if model_type != "xlnet" or name not in XLNET_PRESETS:
            raise ValueError(f"unknown XLNet preset {name!r} (model_type {model_type!r}); choose one of "
                             f"{list(XLNET_PRESETS)}")
        return cls(**XLNET_PRESETS[name] | overrides)


XLNET_PRESETS = {
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, mem_len=None),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                  mem_len=None),
}


def _one_dropout(values: dict[str, Any]) -> dict[str, Any]:
    """config.json's single ``dropout`` (read into hidden_dropout_prob) also drops attention and the FFN."""
    dropout = values["hidden_dropout_prob"]
    return values | dict(attention_probs_dropout_prob=dropout, activation_dropout=dropout)


_XLNET_DEFAULTS = dict(vocab_size=32000, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                       intermediate_size=4096, attention_head_size=None, hidden_act="gelu", hidden_dropout_prob=0.1,
                       initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=5, bos_token_id=1, eos_token_id=2)
XLNET_SPEC = dict(
    defaults=_XLNET_DEFAULTS,
    renamed_fields=dict(d_model="hidden_size", n_layer="num_hidden_layers", n_head="num_attention_heads",
                        d_inner="intermediate_size", d_head="attention_head_size", ff_activation="hidden_act",
                        dropout="hidden_dropout_prob"),
    written=tuple(_XLNET_DEFAULTS),
    unwritten=("attention_probs_dropout_prob", "activation_dropout"),
    fixed=dict(type_vocab_size=0, position_embedding_type="none", max_position_embeddings=1 << 20, norm_first=False),
    # fine-tuning heads' settings (the summary's dropout, SQuAD's top-k), and untie_r: transformers always unties
    ignored=frozenset({"summary_last_dropout", "start_n_top", "end_n_top", "untie_r"}),
    # the sequence summary bertkit's classifier computes (finetuning/heads.py): the last token, dense, tanh
    required=dict(summary_type="last", summary_use_proj=True, summary_activation="tanh", summary_proj_to_labels=False,
                  summary_first_dropout=0),
    derived=_one_dropout,
    # bertkit's feed-forward blocks (Intermediate + ResidualOutput) under XLNet's names
    renames=(
        (r"\.ff\.intermediate\.dense\.", ".ff.layer_1."),
        (r"\.ff\.output\.dense\.", ".ff.layer_2."),
        (r"\.ff\.output\.LayerNorm\.", ".ff.layer_norm."),
    ),
)
