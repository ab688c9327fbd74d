"""Checks of the rotary-position fields of ``BertConfig`` (the scheme: ``bertkit/model/rotary.py``): each wrong
setting is refused with its name. No torch here: a config is read where torch is not imported."""

from __future__ import annotations

from typing import Any

DEFAULTS = dict(rotary_dim=None, rotary_base=10000.0, rotary_value=False)


def check_rotary(config: Any) -> None:
    """Rotary settings: an even width within the head, a base above 1, the full-attention kernel, and none of them
    without rotary positions (they would be silently unused)."""
    if config.position_embedding_type != "rotary":
        if config.model_type == "roformer":
            raise ValueError("RoFormer's positions are rotary: model_type 'roformer' needs position_embedding_type "
                             f"'rotary', got {config.position_embedding_type!r}")
        unused = [f"{name}={getattr(config, name)!r}" for name, default in DEFAULTS.items()
                  if getattr(config, name) != default]
        if unused:
            raise ValueError(f"{', '.join(unused)} set, but position_embedding_type is "
                             f"{config.position_embedding_type!r}, not 'rotary'")
        return
    dim = config.rotary_dim
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 2 or dim % 2
                            or dim > config.head_size):
        raise ValueError(f"config.rotary_dim must be an even integer from 2 to the head size {config.head_size} "
                         f"(features are rotated in pairs within a head), got {dim!r}")
    if dim is None and config.head_size % 2:
        raise ValueError(f"rotary positions rotate features in pairs: the head size {config.head_size} is odd; set "
                         "an even rotary_dim below it")
    base = config.rotary_base
    if not isinstance(base, (int, float)) or isinstance(base, bool) or not base > 1:
        raise ValueError(f"config.rotary_base must be a number > 1, got {base!r}")
    if not isinstance(config.rotary_value, bool):
        raise ValueError(f"config.rotary_value must be true or false, got {config.rotary_value!r}")
    if config.attention != "full":
        raise ValueError(f"position_embedding_type 'rotary' rotates queries and keys for the full-attention kernel; "
                         f"attention={config.attention!r} is not supported with it")
