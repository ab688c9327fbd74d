"""ModernBERT's config (``ModernBertConfig``), its ``config.json`` fields and transformers' names for its weights: the
``modernbert`` entry of ``architectures.py``; the model itself is ``modernbert.py``.

ModernBERT (Warner et al. 2024) is a pre-norm encoder without biases: rotary positions with two bases (a global
``global_rope_theta`` in the full-attention layers, ``local_rope_theta`` in the sliding-window ones), GeGLU
feed-forwards and a window of ``local_attention`` tokens (±local_attention / 2) in every layer but each
``global_attn_every_n_layers``-th. Its fields keep transformers' names in config.json; those BertConfig already has
are read into it (``hidden_activation`` → ``hidden_act``, ``norm_eps`` → ``layer_norm_eps``, the dropouts).
transformers 5 also writes ``layer_types`` (each layer's kind) and ``rope_parameters`` (the two thetas): both are
read, ``layer_types`` kept (it is the truth a folder states), ``rope_parameters`` folded into the two thetas.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import ACTIVATIONS, BertConfig

LAYER_TYPES = ("full_attention", "sliding_attention")
# the BertConfig fields ModernBERT's blocks read; any other one away from its default would be silently unused
USED_FIELDS = frozenset({
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "activation_dropout", "max_position_embeddings",
    "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id", "eos_token_id", "model_type",
    "position_embedding_type", "type_vocab_size", "norm_first"})
POOLINGS = ("cls", "mean")


@dataclass
class ModernBertConfig(BertConfig):
    """ModernBERT's sizes (defaults: ModernBERT-base, as transformers' ModernBertConfig) and its own settings."""

    vocab_size: int = 50368
    hidden_size: int = 768
    num_hidden_layers: int = 22
    num_attention_heads: int = 12
    intermediate_size: int = 1152
    hidden_dropout_prob: float = 0.0  # embedding_dropout: after the embeddings' norm
    attention_probs_dropout_prob: float = 0.0  # attention_dropout: on the probabilities and after Wo
    activation_dropout: float = 0.0  # mlp_dropout: between GeGLU and Wo
    max_position_embeddings: int = 8192
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-5
    pad_token_id: int | None = 50283
    bos_token_id: int | None = 50281
    eos_token_id: int | None = 50282
    model_type: str = "modernbert"
    position_embedding_type: str = "rotary"
    norm_first: bool = True
    cls_token_id: int | None = 50281
    sep_token_id: int | None = 50282
    global_rope_theta: float = 160000.0
    local_rope_theta: float = 10000.0
    local_attention: int = 128  # the sliding window's width: each token sees ±local_attention / 2
    global_attn_every_n_layers: int = 3  # layers 0, n, 2n, … attend globally (when layer_types is not given)
    layer_types: list[str] | None = None  # each layer's "full_attention" / "sliding_attention"; None: from n above
    rope_parameters: dict[str, Any] | None = None  # transformers 5's form of the thetas: read, folded into them
    norm_bias: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False
    decoder_bias: bool = True
    classifier_pooling: str = "cls"
    classifier_bias: bool = False
    classifier_activation: str = "gelu"
    classifier_dropout: float = 0.0
    initializer_cutoff_factor: float = 2.0
    id2label: dict[int, str] | None = None  # the classifier's labels; None: two (transformers' default)

    def __post_init__(self) -> None:
        if self.position_embedding_type == "absolute":  # published configs carry BERT's default, never read
            self.position_embedding_type = "rotary"
        self.fold_rope_parameters()
        if self.layer_types is None and _is_count(self.global_attn_every_n_layers, 1) and _is_count(
                self.num_hidden_layers, 1):
            self.layer_types = [LAYER_TYPES[bool(i % self.global_attn_every_n_layers)]
                                for i in range(self.num_hidden_layers)]
        if self.id2label is None:
            self.id2label = {0: "LABEL_0", 1: "LABEL_1"}
        self.id2label = {int(k): v for k, v in self.id2label.items()}  # config.json's keys are strings
        super().__post_init__()
        self.check_modernbert_fields()

    def fold_rope_parameters(self) -> None:
        """transformers 5's ``rope_parameters`` → the two thetas; a scaled rope is refused (not built here)."""
        if self.rope_parameters is None:
            return
        for kind, name in (("full_attention", "global_rope_theta"), ("sliding_attention", "local_rope_theta")):
            rope = self.rope_parameters.get(kind) or {}
            if rope.get("rope_type", "default") != "default" or set(rope) - {"rope_type", "rope_theta"}:
                raise ValueError(f"rope_parameters[{kind!r}] = {rope!r}: only the default rope (rope_theta alone) "
                                 "is built by bertkit")
            if "rope_theta" in rope:
                setattr(self, name, rope["rope_theta"])
        self.rope_parameters = None

    def check_modernbert_fields(self) -> None:
        """ModernBERT's own fields: an even window shorter than the positions, known layer kinds, thetas > 1."""
        window, positions = self.local_attention, self.max_position_embeddings
        if not _is_count(window, 2) or window % 2:
            raise ValueError(f"config.local_attention must be an even integer ≥ 2 (the window reaches "
                             f"local_attention / 2 tokens each side), got {window!r}")
        if window >= positions:
            raise ValueError(f"config.local_attention {window} must be below max_position_embeddings {positions}: "
                             "a window as long as the input is global attention")
        if not _is_count(self.global_attn_every_n_layers, 1):
            raise ValueError(f"config.global_attn_every_n_layers must be an integer ≥ 1, got "
                             f"{self.global_attn_every_n_layers!r}")
        kinds = self.layer_types
        if not isinstance(kinds, list) or len(kinds) != self.num_hidden_layers or set(kinds) - set(LAYER_TYPES):
            raise ValueError(f"config.layer_types must list {self.num_hidden_layers} of {LAYER_TYPES}, got {kinds!r}")
        for name in ("global_rope_theta", "local_rope_theta"):
            theta = getattr(self, name)
            if not isinstance(theta, (int, float)) or isinstance(theta, bool) or not theta > 1:
                raise ValueError(f"config.{name} must be a number > 1, got {theta!r}")
        if self.position_embedding_type != "rotary" or self.type_vocab_size or not self.norm_first:
            raise ValueError("ModernBERT is a pre-norm encoder with rotary positions and no segment table: "
                             "position_embedding_type, type_vocab_size and norm_first keep their ModernBERT values")
        unused = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(BertConfig)
                  if f.name not in USED_FIELDS and getattr(self, f.name) != f.default]
        if unused:
            raise ValueError(f"ModernBERT's blocks do not compute {', '.join(unused)}: leave them at their defaults")
        if self.classifier_pooling not in POOLINGS:
            raise ValueError(f"config.classifier_pooling must be one of {POOLINGS}, got {self.classifier_pooling!r}")
        if self.classifier_activation not in ACTIVATIONS:
            raise ValueError(f"config.classifier_activation must be one of {ACTIVATIONS}, got "
                             f"{self.classifier_activation!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"config.pad_token_id={self.pad_token_id} is not a token id of the vocabulary "
                             f"({self.vocab_size})")
        if not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(f"config.classifier_dropout must be in [0, 1), got {self.classifier_dropout!r}")
        if not isinstance(self.initializer_cutoff_factor, (int, float)) or not self.initializer_cutoff_factor > 0:
            raise ValueError(f"config.initializer_cutoff_factor must be > 0, got {self.initializer_cutoff_factor!r}")
        if not self.id2label:
            raise ValueError("config.id2label must name at least one label")

    @property
    def num_labels(self) -> int:
        """Outputs of the sequence classifier."""
        return len(self.id2label)

    @classmethod
    def preset(cls, name: str, model_type: str = "modernbert", **overrides: Any) -> ModernBertConfig:
        """ModernBERT-base or ModernBERT-large (their published config.json)."""
        if model_type != "modernbert" or name not in MODERNBERT_PRESETS:
            raise ValueError(f"unknown ModernBERT preset {name!r} (model_type {model_type!r}); choose one of "
                             f"{list(MODERNBERT_PRESETS)}")
        return cls(**MODERNBERT_PRESETS[name] | overrides)


def _is_count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


MODERNBERT_PRESETS = {  # answerdotai/ModernBERT-base and -large: transformers' defaults but the mean pooling
    "base": dict(classifier_pooling="mean"),
    "large": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, intermediate_size=2624,
                  classifier_pooling="mean"),
}

_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ModernBertConfig) if f.default is not dataclasses.MISSING}
MODERNBERT_SPEC = dict(
    defaults=_DEFAULTS,
    renamed_fields=dict(hidden_activation="hidden_act", norm_eps="layer_norm_eps", embedding_dropout=
                        "hidden_dropout_prob", attention_dropout="attention_probs_dropout_prob",
                        mlp_dropout="activation_dropout"),
    written=("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "activation_dropout",
             "max_position_embeddings", "initializer_range", "layer_norm_eps", "pad_token_id", "bos_token_id",
             "eos_token_id"),
    unwritten=("position_embedding_type",),  # always rotary; published configs say "absolute", unread
    fixed=dict(type_vocab_size=0, norm_first=True),
    # flash-attention and compile switches (no change to the numbers), and fields written from others
    ignored=frozenset({"deterministic_flash_attn", "reference_compile", "repad_logits_with_grad",
                       "sparse_pred_ignore_index", "rope_parameters", "label2id"}),
    required=dict(sparse_prediction=False),  # MLM logits of every position, as bertkit's heads give
)
