"""T5's ``config.json`` fields and transformers' names for its weights: the ``t5`` entry of ``architectures.py``.

transformers' T5Stack names each block's halves by position — ``block.N.layer.0`` self-attention, (decoder)
``layer.1`` cross-attention, the last ``layer.K`` the feed-forward — and keeps the relative bias in block 0's
self-attention, from where every block reads it; bertkit computes it once per stack (``encoder.py``).
"""

from __future__ import annotations

import re
from typing import Any

from ..config import BertConfig


def t5_feed_forward_proj(config: BertConfig) -> str:
    """T5's ``feed_forward_proj`` for a config: ``relu``, ``gelu``, ``gated-gelu`` (tanh GELU), ``gated-silu`` …"""
    if not config.gated_feed_forward:
        return config.hidden_act
    return "gated-gelu" if config.hidden_act == "gelu_new" else f"gated-{config.hidden_act}"


def t5_activation(feed_forward_proj: str) -> tuple[str, bool]:
    """(``hidden_act``, gated) of a T5 ``feed_forward_proj``, as transformers' T5Config reads it."""
    parts = feed_forward_proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ValueError(f"feed_forward_proj {feed_forward_proj!r} is not 'ACT' or 'gated-ACT'")
    if feed_forward_proj == "gated-gelu":
        return "gelu_new", True
    return parts[-1], len(parts) == 2


def _t5_ffn(match: re.Match, config: BertConfig) -> str:
    """The feed-forward half of a T5 block: layer.1 in the encoder, layer.2 in the decoder (after cross-attention)."""
    stack, block, part = match.groups()
    index = 1 if stack == "en" else 2
    name = {"intermediate.dense": "wi_0" if config.gated_feed_forward else "wi", "intermediate.gate": "wi_1",
            "output.dense": "wo"}.get(part)
    return f"{stack}coder.{block}.layer.{index}." + (f"DenseReluDense.{name}." if name else "layer_norm.")


def _t5_fields(values: dict[str, Any]) -> dict[str, Any]:
    """feed_forward_proj (read into hidden_act) → the activation and the gate; one dropout_rate everywhere."""
    act, gated = t5_activation(values["hidden_act"])
    dropout = values["hidden_dropout_prob"]
    return values | dict(hidden_act=act, gated_feed_forward=gated, attention_probs_dropout_prob=dropout,
                         activation_dropout=dropout)


_T5_DEFAULTS = dict(vocab_size=32128, hidden_size=512, attention_head_size=64, intermediate_size=2048,
                    num_hidden_layers=6, num_attention_heads=8, relative_attention_num_buckets=32,
                    relative_attention_max_distance=128, hidden_dropout_prob=0.1, layer_norm_eps=1e-6,
                    hidden_act="relu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                    tie_word_embeddings=True)
T5_SPEC = dict(
    defaults=_T5_DEFAULTS, seq2seq=True,
    renamed_fields=dict(d_model="hidden_size", d_kv="attention_head_size", d_ff="intermediate_size",
                        num_layers="num_hidden_layers", num_decoder_layers="decoder_layers",
                        num_heads="num_attention_heads", dropout_rate="hidden_dropout_prob",
                        layer_norm_epsilon="layer_norm_eps", feed_forward_proj="hidden_act"),
    written=("vocab_size", "hidden_size", "attention_head_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "relative_attention_num_buckets", "relative_attention_max_distance",
             "hidden_dropout_prob", "layer_norm_eps", "hidden_act", "pad_token_id", "eos_token_id"),
    unwritten=("attention_probs_dropout_prob", "activation_dropout", "gated_feed_forward"),
    fixed=dict(type_vocab_size=0, norm_first=True, norm_type="rms", use_bias=False, scale_attention=False,
               position_embedding_type="relative_bias", embedding_layer_norm=False, final_layer_norm=True,
               final_dropout=True, share_encoder_decoder_embeddings=True, add_final_logits_bias=False,
               scale_embedding=False, position_offset=0, max_position_embeddings=1 << 20),
    # written by transformers from the fields above, or bookkeeping; n_positions: old configs' unused length
    ignored=frozenset({"dense_act_fn", "is_gated_act", "initializer_factor", "n_positions", "is_decoder",
                       "decoder_attention_heads", "decoder_ffn_dim"}),
    derived=_t5_fields,
    renames=(
        (r"^model\.", ""),
        (r"(en|de)coder\.embeddings\.word_embeddings\.", r"\1coder.embed_tokens."),
        (r"(en|de)coder\.encoder\.relative_attention_bias\.relative_attention_bias\.",
         r"\1coder.block.0.layer.0.SelfAttention.relative_attention_bias."),
        (r"(en|de)coder\.encoder\.LayerNorm\.", r"\1coder.final_layer_norm."),
        (r"(en|de)coder\.encoder\.layer\.", r"\1coder.block."),
        (r"(block\.\d+)\.attention\.self\.(query|key|value)\.", lambda m, c: f"{m.group(1)}.layer.0.SelfAttention."
                                                                   f"{m.group(2)[0]}."),
        (r"(block\.\d+)\.attention\.output\.dense\.", r"\1.layer.0.SelfAttention.o."),
        (r"(block\.\d+)\.attention\.output\.LayerNorm\.", r"\1.layer.0.layer_norm."),
        (r"(block\.\d+)\.crossattention\.self\.(query|key|value)\.",
         lambda m, c: f"{m.group(1)}.layer.1.EncDecAttention.{m.group(2)[0]}."),
        (r"(block\.\d+)\.crossattention\.output\.dense\.", r"\1.layer.1.EncDecAttention.o."),
        (r"(block\.\d+)\.crossattention\.output\.LayerNorm\.", r"\1.layer.1.layer_norm."),
        (r"(en|de)coder\.(block\.\d+)\.(intermediate\.dense|intermediate\.gate|output\.dense|output\.LayerNorm)\.",
         _t5_ffn),
    ),
)
