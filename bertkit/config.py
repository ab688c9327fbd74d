"""BertConfig: the shape of any model of the BERT family, with Hugging Face ``config.json`` field names.

One dataclass serves BERT, RoBERTa, ALBERT, ELECTRA and DistilBERT: the blocks read only these fields. Each
architecture (``bertkit/model/<name>.py``) translates its own ``config.json`` to and from it, and refuses what the
blocks cannot compute.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .attention_options import check_attention_options
from .rotary_options import check_rotary

# Google's BERT miniatures (Turc et al. 2019) plus the two paper sizes: (layers, hidden, heads); FFN = 4 × hidden.
PRESETS = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}
# The published sizes of the other architectures (their reference configs), beyond the shape of PRESETS.
_ALBERT = dict(model_type="albert", vocab_size=30000, embedding_size=128, hidden_act="gelu_new", num_hidden_groups=1,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
_ELECTRA_GENERATOR = dict(model_type="electra", hidden_size=256, num_attention_heads=4, intermediate_size=1024)
_XLM = dict(model_type="xlm", type_vocab_size=0, pad_token_id=2, bos_token_id=0, eos_token_id=1)
ARCHITECTURE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "roberta": {size: dict(preset=size, model_type="roberta", vocab_size=50265, max_position_embeddings=514,
                           type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5) for size in ("base", "large")},
    "albert": {
        "base": _ALBERT | dict(preset="base"),
        "large": _ALBERT | dict(preset="large"),
        "xlarge": _ALBERT | dict(num_hidden_layers=24, hidden_size=2048, num_attention_heads=16,
                                 intermediate_size=8192),
        "xxlarge": _ALBERT | dict(num_hidden_layers=12, hidden_size=4096, num_attention_heads=64,
                                  intermediate_size=16384),
    },
    "electra": {
        "small": dict(model_type="electra", num_hidden_layers=12, hidden_size=256, num_attention_heads=4,
                      intermediate_size=1024, embedding_size=128),
        "base": dict(preset="base", model_type="electra", embedding_size=768),
        "large": dict(preset="large", model_type="electra", embedding_size=1024),
        "small-generator": _ELECTRA_GENERATOR | dict(num_hidden_layers=12, embedding_size=128),
        "base-generator": _ELECTRA_GENERATOR | dict(num_hidden_layers=12, embedding_size=768),
        "large-generator": _ELECTRA_GENERATOR | dict(num_hidden_layers=24, embedding_size=1024),
    },
    "distilbert": {"base": dict(preset="base", model_type="distilbert", num_hidden_layers=6, type_vocab_size=0)},
    # XLM (Lample & Conneau 2019): xlm-mlm-en-2048 (transformers' XLMConfig defaults), and the 17 / 100 language ones
    "xlm": {
        "mlm-en-2048": _XLM | dict(vocab_size=30145, n_langs=1, hidden_size=2048, num_hidden_layers=12,
                                   num_attention_heads=16, intermediate_size=8192),
        "mlm-17-1280": _XLM | dict(vocab_size=200000, n_langs=17, use_lang_emb=False, hidden_size=1280,
                                   num_hidden_layers=16, num_attention_heads=16, intermediate_size=5120),
        "mlm-100-1280": _XLM | dict(vocab_size=200000, n_langs=100, use_lang_emb=False, hidden_size=1280,
                                    num_hidden_layers=16, num_attention_heads=16, intermediate_size=5120),
    },
    "nezha": {size: dict(preset=size, model_type="nezha", vocab_size=21128, position_embedding_type="nezha")
              for size in ("base", "large")},
    "roformer": {"base": dict(preset="base", model_type="roformer", vocab_size=50000, max_position_embeddings=1536,
                              position_embedding_type="rotary")},
    # T5 (T5Config's other fields are T5's): t5-small / base / large, and v1.1's gated-GELU, untied sizes
    "t5": {
        "small": dict(),
        "base": dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12),
        "large": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16),
        "v1_1-small": dict(hidden_size=512, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=6,
                           hidden_act="gelu_new", gated_feed_forward=True, tie_word_embeddings=False),
        "v1_1-base": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                          hidden_act="gelu_new", gated_feed_forward=True, tie_word_embeddings=False),
        "v1_1-large": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=24, num_attention_heads=16,
                           hidden_act="gelu_new", gated_feed_forward=True, tie_word_embeddings=False),
    },
}
ACTIVATIONS = ("gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish", "tanh")
# absolute / sinusoidal: added to the token embeddings; relative_bias: T5's bucketed bias added to attention scores;
# relative_key(_query): Shaw et al.'s learned distance vectors in the scores; nezha: NEZHA's fixed sinusoidal
# distance vectors added to keys and values (bertkit/model/relative_positions.py); rotary: queries and keys rotated
# by their position inside attention (RoFormer, bertkit/model/rotary.py)
POSITION_TYPES = ("absolute", "sinusoidal", "none", "relative_bias", "relative_key", "relative_key_query", "nezha",
                  "rotary")
RELATIVE_IN_ATTENTION = ("relative_key", "relative_key_query", "nezha")  # computed inside each attention block


@dataclass
class BertConfig:
    """Sizes and regularisation of a BERT-family encoder; defaults are bert-base-uncased."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # 0: no segment embeddings (DistilBERT)
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0  # None: no padding token (GPT-2)
    bos_token_id: int | None = None  # a decoder's start / end of text (generation's defaults)
    eos_token_id: int | None = None
    model_type: str = "bert"
    embedding_size: int | None = None  # ALBERT / ELECTRA: embeddings of this width, projected to hidden_size
    position_embedding_type: str = "absolute"
    relative_attention_num_buckets: int = 32  # relative_bias only
    relative_attention_max_distance: int = 128
    max_relative_position: int = 64  # nezha only: distances beyond ±this share the last vector
    rotary_dim: int | None = None  # rotary only: features of each head rotated (even); None: the whole head
    rotary_base: float = 10000.0  # rotary only: pair i turns by position · base^(−2i / rotary_dim)
    rotary_value: bool = False  # rotary only: rotate the values too (RoFormer's option)
    use_task_id: bool = False  # ERNIE: a task-type embedding (task_type_ids) added to the token embeddings
    task_type_vocab_size: int = 3  # ERNIE: rows of that table
    n_langs: int = 1  # XLM: languages; above 1 (with use_lang_emb) a language embedding is added (langs)
    use_lang_emb: bool = True  # XLM: whether the language embedding exists when n_langs > 1
    num_hidden_groups: int | None = None  # ALBERT: layers share the weights of this many groups; None: no sharing
    inner_group_num: int = 1  # ALBERT: layers in a group
    norm_first: bool = False  # pre-LN blocks (LayerNorm before attention / FFN) with a final LayerNorm
    classifier_dropout_prob: float = 0.1  # ALBERT: dropout before the SOP classifier
    is_decoder: bool = False  # causal self-attention: each position sees itself and earlier ones (GPT, decoders)
    add_cross_attention: bool = False  # each layer also attends to an encoder's output (the Transformer's decoder)
    # attention kernel: "full" softmax, or an efficient one with its sizes (bertkit/model/efficient/)
    attention: str = "full"
    linformer_k: int = 256  # linformer: keys and values projected to k positions
    linformer_shared: bool = True  # linformer: one E, F pair per layer (True) or one per head
    performer_features: int = 256  # performer: random features m
    performer_redraw: int = 1000  # performer: training forward passes between feature redraws; 0: never
    performer_causal: bool = False  # performer: each position attends to itself and earlier ones (prefix sums)
    lsh_num_buckets: int = 8  # lsh: hash buckets per round (1 or even)
    lsh_chunk_size: int = 64  # lsh: sorted positions attend within their chunk and the previous one
    lsh_rounds: int = 2  # lsh: hash rounds, combined by their softmax normalisers
    local_window: int = 256  # local: keys at most this many positions away on each side
    local_global_tokens: tuple[int, ...] = (0,)  # local: positions that attend and are attended everywhere ([CLS])
    # the Transformer family's embedding and stack options (nn.Transformer, BART, Marian)
    scale_embedding: bool = False  # token embeddings × √width (Vaswani et al., Marian)
    position_offset: int = 0  # learned positions start at this row (BART: 2)
    sinusoidal_layout: str = "interleaved"  # "interleaved": sin / cos alternate; "halves": sin, then cos (Marian)
    embedding_layer_norm: bool | None = None  # LayerNorm after the embeddings; None: in post-LN stacks only
    final_layer_norm: bool | None = None  # LayerNorm after the last layer; None: in pre-LN stacks only
    activation_dropout: float = 0.0  # dropout after the FFN's activation (BART, Marian)
    # T5's block options: each a small switch on the shared blocks, off for every other architecture
    norm_type: str = "layer"  # "layer": LayerNorm; "rms": T5's scale-only RMS norm (no mean, no bias)
    use_bias: bool = True  # False: projections without biases (T5)
    scale_attention: bool = True  # False: scores are QKᵀ, not QKᵀ/√d (T5 folds the scale into its initialisation)
    attention_head_size: int | None = None  # None: hidden_size / heads; T5's d_kv may differ (v1.1 small: 6 × 64)
    gated_feed_forward: bool = False  # act(wi_0 x) ⊙ (wi_1 x) (T5 v1.1's gated GELU)
    final_dropout: bool = False  # dropout after the stack's final LayerNorm (T5)

    def __post_init__(self) -> None:
        sizes = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "max_position_embeddings", "inner_group_num")
        for name in sizes:
            _check_int(name, getattr(self, name), minimum=1)
        _check_int("type_vocab_size", self.type_vocab_size, minimum=0)
        for name in ("embedding_size", "num_hidden_groups"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        if self.attention_head_size is not None:
            _check_int("attention_head_size", self.attention_head_size, minimum=1)
        elif self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                             f"{self.num_attention_heads}")
        if self.norm_type not in ("layer", "rms"):
            raise ValueError(f"norm_type must be 'layer' or 'rms', got {self.norm_type!r}")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")
        if self.position_embedding_type not in POSITION_TYPES:
            raise ValueError(f"position_embedding_type {self.position_embedding_type!r} is not supported by bertkit; "
                             f"choose one of {POSITION_TYPES}")
        if self.num_hidden_groups is not None and self.num_hidden_layers % self.num_hidden_groups:
            raise ValueError(f"num_hidden_layers {self.num_hidden_layers} is not a multiple of num_hidden_groups "
                             f"{self.num_hidden_groups}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"config.{name} must be in [0, 1), got {getattr(self, name)!r}")
        check_attention_options(self)
        _check_int("position_offset", self.position_offset, minimum=0)
        if self.sinusoidal_layout not in ("interleaved", "halves"):
            raise ValueError(f"sinusoidal_layout must be 'interleaved' or 'halves', got {self.sinusoidal_layout!r}")
        if not 0.0 <= self.activation_dropout < 1.0:
            raise ValueError(f"config.activation_dropout must be in [0, 1), got {self.activation_dropout!r}")
        if (self.is_decoder or self.add_cross_attention) and self.attention != "full":
            raise ValueError(f"attention={self.attention!r} cannot decode: decoders (is_decoder / "
                             "add_cross_attention) need full attention for their causal mask and key / value cache")
        _check_int("max_relative_position", self.max_relative_position, minimum=1)
        _check_int("task_type_vocab_size", self.task_type_vocab_size, minimum=1)
        if not isinstance(self.use_task_id, bool):
            raise ValueError(f"config.use_task_id must be true or false, got {self.use_task_id!r}")
        if self.use_task_id and self.model_type != "ernie":
            raise ValueError(f"use_task_id (task-type embeddings) is ERNIE's; model_type {self.model_type!r} "
                             "folders would load elsewhere without them: use model_type 'ernie'")
        _check_int("n_langs", self.n_langs, minimum=1)
        if not isinstance(self.use_lang_emb, bool):
            raise ValueError(f"config.use_lang_emb must be true or false, got {self.use_lang_emb!r}")
        if self.n_langs > 1 and self.model_type != "xlm":
            raise ValueError(f"n_langs={self.n_langs} (language embeddings) is XLM's; use model_type 'xlm'")
        if self.model_type == "xlm" and (self.intermediate_size != 4 * self.hidden_size
                                         or self.hidden_act not in ("gelu", "relu")):
            raise ValueError("XLM's feed-forward is 4 × emb_dim wide with gelu or relu (gelu_activation); got "
                             f"intermediate_size={self.intermediate_size}, hidden_act={self.hidden_act!r}")
        if (self.model_type == "nezha") != (self.position_embedding_type == "nezha"):
            raise ValueError("position_embedding_type 'nezha' and model_type 'nezha' go together (NEZHA's folders "
                             f"name no position type); got model_type {self.model_type!r}, position_embedding_type "
                             f"{self.position_embedding_type!r}")
        if self.position_embedding_type in ("relative_key", "relative_key_query") and self.model_type not in (
                "bert", "roberta", "albert", "electra", "ernie"):  # the classes transformers 4 computed them in
            raise ValueError(f"position_embedding_type {self.position_embedding_type!r} is for BERT, RoBERTa, ALBERT, "
                             f"ELECTRA and ERNIE models, not model_type {self.model_type!r}")
        if self.position_embedding_type in RELATIVE_IN_ATTENTION and (
                self.is_decoder or self.add_cross_attention or self.attention != "full"):
            raise ValueError(f"position_embedding_type {self.position_embedding_type!r} is built for bidirectional "
                             "encoders with full attention; it cannot be combined with is_decoder, "
                             f"add_cross_attention or attention={self.attention!r}")
        check_rotary(self)
        if self.is_decoder and self.position_embedding_type == "relative_bias" and self.model_type != "t5":
            raise ValueError("position_embedding_type 'relative_bias' is bidirectional here; a decoder "
                             "(is_decoder) needs 'absolute', 'sinusoidal' or 'none'")

    @property
    def head_size(self) -> int:
        """Width of one attention head (T5's d_kv when set)."""
        return self.attention_head_size or self.hidden_size // self.num_attention_heads

    @property
    def embedding_width(self) -> int:
        """Width of the token embeddings: ``embedding_size`` when factorized, else ``hidden_size``."""
        return self.embedding_size or self.hidden_size

    @property
    def max_tokens(self) -> int:
        """The longest input the positions allow: RoBERTa's position ids start after the padding index."""
        if self.model_type in ("roberta", "xlm-roberta") and self.position_embedding_type in ("absolute", "sinusoidal"):
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings

    @property
    def has_embedding_layer_norm(self) -> bool:
        """Whether the embeddings end with a LayerNorm (BERT, BART: yes; pre-LN stacks, Marian, nn.Transformer: no)."""
        return not self.norm_first if self.embedding_layer_norm is None else self.embedding_layer_norm

    @property
    def has_final_layer_norm(self) -> bool:
        """Whether the stack ends with a LayerNorm (pre-LN stacks and nn.Transformer: yes; BERT, BART: no)."""
        return self.norm_first if self.final_layer_norm is None else self.final_layer_norm

    @property
    def num_unique_layers(self) -> int:
        """Layers with their own weights: all of them, or ALBERT's groups × layers per group."""
        if self.num_hidden_groups is None:
            return self.num_hidden_layers
        return self.num_hidden_groups * self.inner_group_num

    @classmethod
    def preset(cls, name: str, model_type: str = "bert", **overrides: Any) -> BertConfig:
        """A named size of an architecture: BERT tiny … large (any architecture takes these shapes too), RoBERTa
        base / large, ALBERT base … xxlarge, ELECTRA small / base / large (and ``-generator``), DistilBERT base."""
        named = ARCHITECTURE_PRESETS.get(model_type, {})
        if name in named:
            values = dict(named[name])
            shape = values.pop("preset", None)
            return cls(**(_shape(shape) if shape else {}) | values | overrides)
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r} for {model_type}; choose one of {list(named) + list(PRESETS)}")
        shape = _shape(name)
        return cls(**shape | dict(model_type=model_type) | _essentials(model_type, shape["hidden_size"]) | overrides)

    def as_architecture(self, model_type: str) -> BertConfig:
        """The same sizes in another architecture, with what makes it that architecture (ALBERT's factorized,
        shared layers; DistilBERT without segments): a model trained from scratch to compare architectures."""
        values = self.fields() | dict(model_type=model_type, embedding_size=None, num_hidden_groups=None)
        if self.position_embedding_type == "nezha" and model_type != "nezha":  # NEZHA's positions are its own
            values["position_embedding_type"] = "absolute"
        return type(self)(**values | _essentials(model_type, self.hidden_size))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BertConfig:
        """Build from a ``config.json`` dict of any supported ``model_type`` (see ``bertkit.model.architectures``);
        a field the blocks cannot honour is refused, never dropped."""
        from .model.architectures import config_fields  # the model layer knows each architecture's fields

        return cls(**config_fields(values, accepted={f.name for f in dataclasses.fields(cls)}))

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` fields of this model's architecture, as transformers writes them."""
        from .model.architectures import config_values

        return config_values(self)

    def fields(self) -> dict[str, Any]:
        """Every field, bertkit's names."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> BertConfig:
        """Read a ``config.json``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} does not hold a JSON object")
        try:
            return cls.from_dict(values)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}: {error}") from None

    def to_json_string(self, architectures: list[str] | None = None) -> str:
        """The config as pretty JSON (``architectures`` names the model class for transformers)."""
        values = self.to_dict()
        if architectures:
            values["architectures"] = architectures
        return json.dumps(values, indent=2) + "\n"


def _shape(name: str) -> dict[str, int]:
    """Layers, hidden size, heads and FFN size of a BERT preset."""
    layers, hidden, heads = PRESETS[name]
    return dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=4 * hidden)


def _essentials(model_type: str, hidden_size: int) -> dict[str, Any]:
    """What a BERT shape needs to be an instance of ``model_type``."""
    return {"distilbert": dict(type_vocab_size=0), "nezha": dict(position_embedding_type="nezha"),
            "roformer": dict(position_embedding_type="rotary"),
            "xlm": dict(type_vocab_size=0, pad_token_id=2, bos_token_id=0, eos_token_id=1),
            "albert": dict(num_hidden_groups=1, embedding_size=min(128, hidden_size), hidden_act="gelu_new")
            }.get(model_type, {})


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"config.{name} must be an integer ≥ {minimum}, got {value!r}")


# -- the encoder-decoder Transformer ------------------------------------------------------------------------------
@dataclass
class Seq2SeqConfig(BertConfig):
    """An encoder-decoder: the encoder's sizes are BertConfig's, the decoder's default to them; defaults are the
    Transformer base of Vaswani et al. (6 + 6 layers, d 512, 8 heads, FFN 2048, ReLU, sinusoids, √d scaling,
    a LayerNorm closing each stack as ``torch.nn.Transformer`` has)."""

    vocab_size: int = 32000
    hidden_size: int = 512
    num_hidden_layers: int = 6
    num_attention_heads: int = 8
    intermediate_size: int = 2048
    hidden_act: str = "relu"
    attention_probs_dropout_prob: float = 0.0
    type_vocab_size: int = 0
    layer_norm_eps: float = 1e-5
    model_type: str = "transformer"
    position_embedding_type: str = "sinusoidal"
    scale_embedding: bool = True
    embedding_layer_norm: bool | None = False
    final_layer_norm: bool | None = True
    decoder_layers: int | None = None  # None: as the encoder (num_hidden_layers)
    decoder_attention_heads: int | None = None  # None: num_attention_heads
    decoder_ffn_dim: int | None = None  # None: intermediate_size
    decoder_start_token_id: int | None = None  # the decoder's first input; None: pad_token_id (Marian's rule)
    share_encoder_decoder_embeddings: bool = True  # one token matrix for source and target
    tie_word_embeddings: bool = True  # the output projection is the target token matrix
    add_final_logits_bias: bool = False  # BART / Marian: a fixed (buffer) bias added to the logits

    def __post_init__(self) -> None:
        super().__post_init__()
        self.decoder_layers = self.decoder_layers or self.num_hidden_layers
        self.decoder_attention_heads = self.decoder_attention_heads or self.num_attention_heads
        self.decoder_ffn_dim = self.decoder_ffn_dim or self.intermediate_size
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.pad_token_id
        for name in ("decoder_layers", "decoder_attention_heads", "decoder_ffn_dim"):
            _check_int(name, getattr(self, name), minimum=1)
        if self.attention_head_size is None and self.hidden_size % self.decoder_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of decoder_attention_heads "
                             f"{self.decoder_attention_heads}")
        for name in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"config.{name}={value} is not a token id of the vocabulary ({self.vocab_size})")
        if self.is_decoder or self.add_cross_attention:
            raise ValueError("an encoder-decoder config describes both stacks: is_decoder / add_cross_attention are "
                             "set on the decoder's own config (Seq2SeqConfig.decoder_config())")

    def encoder_config(self) -> BertConfig:
        """The encoder stack's config: bidirectional self-attention."""
        return BertConfig(**_base_fields(self))

    def decoder_config(self) -> BertConfig:
        """The decoder stack's config: causal self-attention, cross-attention to the encoder, its own sizes."""
        return BertConfig(**_base_fields(self) | dict(
            is_decoder=True, add_cross_attention=True, num_hidden_layers=self.decoder_layers,
            num_attention_heads=self.decoder_attention_heads, intermediate_size=self.decoder_ffn_dim))


def _base_fields(config: BertConfig) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(BertConfig)}
    return {k: v for k, v in config.fields().items() if k in names}

