"""DeBERTa-v2 / v3's config (``DebertaV2Config``), its ``config.json`` fields and transformers' names for its weights:
the ``deberta-v2`` entry of ``architectures.py``; the model is ``deberta_v2.py``, its attention
``disentangled_attention.py``.

DeBERTa (He et al. 2021) scores each query-key pair by content and by relative position, disentangled: content to
content, content to position (``c2p``) and position to content (``p2c``), with one table of relative-position
embeddings shared by every layer (``rel_embeddings``), optionally log-bucketed (``position_buckets``) and
LayerNorm-ed (``norm_rel_ebd``). Absolute positions are added to the input only with ``position_biased_input``
(v3: no). Fields keep transformers' names; ``position_embedding_type`` is derived from ``position_biased_input``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import ACTIVATIONS, PRESETS, BertConfig

POSITION_ATTENTION_TYPES = ("c2p", "p2c")  # content → position, position → content
REL_EMBEDDING_NORMS = ("none", "layer_norm")


@dataclass
class DebertaV2Config(BertConfig):
    """DeBERTa-v2's sizes and position settings (defaults: transformers' DebertaV2Config, deberta-v2-xlarge's
    shape without its relative attention)."""

    vocab_size: int = 128100
    hidden_size: int = 1536
    num_hidden_layers: int = 24
    num_attention_heads: int = 24
    intermediate_size: int = 6144
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-7
    model_type: str = "deberta-v2"
    position_embedding_type: str | None = None  # derived: "absolute" with position_biased_input, else "none"
    relative_attention: bool = False  # c2p / p2c scores from the shared relative-position embeddings
    max_relative_positions: int = -1  # < 1: max_position_embeddings
    position_buckets: int = -1  # > 0: distances log-bucketed into this many per side
    pos_att_type: tuple[str, ...] | list[str] | str | None = ()  # "c2p", "p2c" or both ("p2c|c2p" as in config.json)
    norm_rel_ebd: str = "none"  # "layer_norm": the relative embeddings pass a LayerNorm (encoder.LayerNorm)
    share_att_key: bool = False  # positions projected by the content query / key projections
    position_biased_input: bool = True  # absolute position embeddings added to the input
    pooler_hidden_size: int | None = None  # None: hidden_size (the ContextPooler's width)
    pooler_dropout: float = 0.0
    pooler_hidden_act: str = "gelu"
    cls_dropout: float | None = None  # the classifier's dropout; None: hidden_dropout_prob
    legacy: bool = True  # MLM head as cls.predictions (True) or lm_predictions.lm_head (False, v3's checkpoints)
    conv_kernel_size: int = 0  # > 0: a convolution over the embeddings joins the first layer's output
    conv_groups: int = 1
    conv_act: str = "tanh"

    def __post_init__(self) -> None:
        if isinstance(self.pos_att_type, str):  # transformers' "p2c|c2p"
            self.pos_att_type = [t.strip() for t in self.pos_att_type.lower().split("|") if t.strip()]
        self.pos_att_type = list(self.pos_att_type or ())  # a list, as config.json and transformers hold it
        derived = "absolute" if self.position_biased_input else "none"
        if self.position_embedding_type is None:
            self.position_embedding_type = derived
        if self.pooler_hidden_size is None:
            self.pooler_hidden_size = self.hidden_size
        super().__post_init__()
        self.check_deberta_fields(derived)

    @property
    def relative_span(self) -> int:
        """Relative distances per side the embedding table holds: position_buckets, else max_relative_positions
        (max_position_embeddings when < 1)."""
        return self.position_buckets if self.position_buckets > 0 else self.max_relative

    @property
    def max_relative(self) -> int:
        """The largest distance the log buckets distinguish (max_relative_positions, or max_position_embeddings)."""
        return self.max_relative_positions if self.max_relative_positions > 0 else self.max_position_embeddings

    @property
    def rel_embedding_norms(self) -> list[str]:
        """``norm_rel_ebd`` split as transformers reads it ("layer_norm", "none", joined by "|")."""
        return [part.strip() for part in self.norm_rel_ebd.lower().split("|")]

    def check_deberta_fields(self, derived: str) -> None:
        """DeBERTa's own fields: types, known position attention types, positions only where they are computed."""
        for name in ("relative_attention", "share_att_key", "position_biased_input", "legacy"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"config.{name} must be true or false, got {getattr(self, name)!r}")
        for name in ("max_relative_positions", "position_buckets", "conv_kernel_size", "conv_groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"config.{name} must be an integer, got {value!r}")
        if self.position_embedding_type != derived:
            raise ValueError(f"DeBERTa's position_embedding_type follows position_biased_input "
                             f"({self.position_biased_input} → {derived!r}); got {self.position_embedding_type!r}")
        unknown = [t for t in self.pos_att_type if t not in POSITION_ATTENTION_TYPES]
        if unknown or len(set(self.pos_att_type)) != len(self.pos_att_type):
            raise ValueError(f"pos_att_type must list each of {POSITION_ATTENTION_TYPES} at most once, got "
                             f"{list(self.pos_att_type)}")
        if any(norm not in REL_EMBEDDING_NORMS for norm in self.rel_embedding_norms):
            raise ValueError(f"norm_rel_ebd must be 'none' or 'layer_norm' (joined by '|'), got {self.norm_rel_ebd!r}")
        if self.relative_attention:
            self.check_relative_attention()
        else:
            set_anyway = [f"{name}={getattr(self, name)!r}" for name, unset in (
                ("position_buckets", self.position_buckets <= 0),
                ("max_relative_positions", self.max_relative_positions <= 0), ("pos_att_type", not self.pos_att_type),
                ("norm_rel_ebd", "layer_norm" not in self.rel_embedding_norms)) if not unset]
            if set_anyway:
                raise ValueError(f"relative_attention is false, so the relative-position settings "
                                 f"{', '.join(set_anyway)} would do nothing: set relative_attention: true or "
                                 "remove them")
        self.check_blocks()

    def check_relative_attention(self) -> None:
        """c2p / p2c named, and a bucket count the log buckets can use."""
        if not self.pos_att_type:
            raise ValueError("relative_attention needs pos_att_type: 'c2p', 'p2c' or both ('p2c|c2p')")
        if self.position_buckets > 0 and (self.position_buckets < 2 or self.max_relative <= self.position_buckets
                                          // 2 + 1):
            raise ValueError(f"position_buckets={self.position_buckets} needs ≥ 2 buckets and max_relative_positions "
                             f"({self.max_relative}) above position_buckets / 2 + 1 for its log buckets")

    def check_blocks(self) -> None:
        """What the shared blocks compute of DeBERTa: encoder, post-LN, embeddings as wide as the layers."""
        if self.embedding_width != self.hidden_size:
            raise ValueError(f"DeBERTa's embedding_size ({self.embedding_size}) below hidden_size "
                             f"({self.hidden_size}) is not built (its projection comes before the LayerNorm)")
        if self.pooler_hidden_size != self.hidden_size:
            raise ValueError(f"pooler_hidden_size ({self.pooler_hidden_size}) must equal hidden_size "
                             f"({self.hidden_size}): the ContextPooler reads the [CLS] vector")
        if self.is_decoder or self.add_cross_attention or self.norm_first or self.attention != "full":
            raise ValueError("DeBERTa is a post-LN encoder with full attention: is_decoder, add_cross_attention, "
                             "norm_first and efficient attention kernels are not for it")
        for name in ("pooler_hidden_act", "conv_act"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"{name} must be one of {ACTIVATIONS}, got {getattr(self, name)!r}")
        for name in ("pooler_dropout", "cls_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"config.{name} must be in [0, 1), got {value!r}")
        if self.conv_kernel_size > 0 and (self.conv_kernel_size % 2 == 0 or self.conv_groups < 1
                                          or self.hidden_size % self.conv_groups):
            raise ValueError(f"conv_kernel_size must be odd (same-length output) and conv_groups ≥ 1 a divisor of "
                             f"hidden_size; got {self.conv_kernel_size}, {self.conv_groups}")

    @classmethod
    def preset(cls, name: str, model_type: str = "deberta-v2", **overrides: Any) -> DebertaV2Config:
        """DeBERTa-v3 xsmall, small, base or large (their published config.json); BERT's other shapes (tiny, mini,
        medium) with v3's attention, for models trained from scratch."""
        shapes = {size: dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads,
                             intermediate_size=4 * hidden) for size, (layers, hidden, heads) in PRESETS.items()}
        shapes |= DEBERTA_V3_PRESETS  # v3's own sizes win where the names meet (small, base, large)
        if model_type != "deberta-v2" or name not in shapes:
            raise ValueError(f"unknown DeBERTa preset {name!r} (model_type {model_type!r}); choose one of "
                             f"{list(shapes)}")
        return cls(**_V3 | shapes[name] | overrides)


# microsoft/deberta-v3-*: relative attention with 256 log buckets, shared keys, no absolute positions in the input
_V3 = dict(vocab_size=128100, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
           max_position_embeddings=512, type_vocab_size=0, initializer_range=0.02, layer_norm_eps=1e-7,
           relative_attention=True, max_relative_positions=-1, position_buckets=256, pos_att_type=["p2c", "c2p"],
           norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False, pooler_dropout=0.0,
           pooler_hidden_act="gelu")
DEBERTA_V3_PRESETS = {
    "xsmall": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "small": dict(hidden_size=768, num_hidden_layers=6, num_attention_heads=12, intermediate_size=3072),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}


def _mlm_head(match: re.Match, config: BertConfig) -> str:
    """The MLM head's transform and bias: ``cls.predictions`` (legacy) or ``lm_predictions.lm_head`` (v3)."""
    if getattr(config, "legacy", True):
        return match.group(0)
    return "lm_predictions.lm_head." + match.group(2)


_DEFAULTS = dict(vocab_size=128100, hidden_size=1536, num_hidden_layers=24, num_attention_heads=24,
                 intermediate_size=6144, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 max_position_embeddings=512, type_vocab_size=0, initializer_range=0.02, layer_norm_eps=1e-7,
                 pad_token_id=0, bos_token_id=None, eos_token_id=None)
DEBERTA_V2_SPEC = dict(
    defaults=_DEFAULTS,
    written=tuple(_DEFAULTS),
    unwritten=("position_embedding_type",),  # derived from position_biased_input
    # z_steps: the enhanced mask decoder's steps, which transformers' model never reads from the config
    ignored=frozenset({"z_steps"}),
    renames=(
        (r"attention\.self\.(query|key|value)\.", r"attention.self.\1_proj."),
        (r"attention\.self\.disentangled\.", "attention.self."),
        (r"encoder\.relative\.", "encoder."),
        (r"cls\.predictions\.(transform\.)?(dense\.|LayerNorm\.)", _mlm_head),
        (r"cls\.predictions\.()(bias)$", _mlm_head),
    ),
)
