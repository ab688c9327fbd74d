"""Checks of the attention-kernel fields of ``BertConfig`` (kernels: ``bertkit/model/efficient/``): each wrong size
is refused with its name. No torch here: a config is read where torch is not imported."""

from __future__ import annotations

from typing import Any

ATTENTION_KINDS = ("full", "linformer", "performer", "lsh", "local")


def _positive(config: Any, name: str, minimum: int = 1) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"config.{name} must be an integer ≥ {minimum}, got {value!r}")


def check_attention_options(config: Any) -> None:
    """Refuse an unknown kernel or sizes it cannot use; normalises ``local_global_tokens`` to a tuple."""
    if config.attention not in ATTENTION_KINDS:
        raise ValueError(f"config.attention must be one of {ATTENTION_KINDS}, got {config.attention!r}")
    for name in ("linformer_k", "performer_features", "lsh_num_buckets", "lsh_chunk_size", "lsh_rounds",
                 "local_window"):
        _positive(config, name)
    _positive(config, "performer_redraw", minimum=0)
    if config.lsh_num_buckets > 1 and config.lsh_num_buckets % 2:
        raise ValueError(f"config.lsh_num_buckets must be 1 or even (random rotations hash to ±directions), got "
                         f"{config.lsh_num_buckets}")
    if config.attention == "linformer" and config.linformer_k > config.max_position_embeddings:
        raise ValueError(f"config.linformer_k={config.linformer_k} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings}: E and F project at most that many positions to k")
    tokens = config.local_global_tokens
    if not isinstance(tokens, list | tuple) or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0
                                                       for t in tokens):
        raise ValueError(f"config.local_global_tokens must be a list of positions ≥ 0, got {tokens!r}")
    config.local_global_tokens = tuple(sorted(set(tokens)))
    if config.attention != "full" and config.position_embedding_type == "relative_bias":
        raise ValueError(f"attention={config.attention!r} cannot add T5's relative bias: it never forms the "
                         "seq × seq scores; use position_embedding_type 'absolute' or 'sinusoidal'")
