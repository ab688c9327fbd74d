"""bert-as-service's pooling strategies: token vectors of the chosen layer(s) → what the server returns.

The numbers are the original enum's values (``show_server_config`` reports them); CLS_TOKEN / FIRST_TOKEN and
SEP_TOKEN / LAST_TOKEN are the same strategy under two names.
"""

from __future__ import annotations

import torch

from ..pooling import cls_pool, max_pool, mean_pool

STRATEGY_IDS = {
    "NONE": 0,
    "REDUCE_MAX": 1,
    "REDUCE_MEAN": 2,
    "REDUCE_MEAN_MAX": 3,
    "FIRST_TOKEN": 4,
    "CLS_TOKEN": 4,
    "LAST_TOKEN": 5,
    "SEP_TOKEN": 5,
    "CLS_POOLED": 6,
    "CLASSIFICATION": 7,
    "REGRESSION": 8,
}
NEEDS_FINE_TUNING = ("CLASSIFICATION", "REGRESSION")


def checked_strategy(name: str) -> str:
    """The canonical upper-case name of a strategy; unknown or not-yet-servable names are a clear error."""
    canonical = str(name).strip().upper()
    if canonical not in STRATEGY_IDS:
        raise ValueError(f"unknown pooling_strategy {name!r}; choose one of {', '.join(STRATEGY_IDS)}")
    if canonical in NEEDS_FINE_TUNING:
        raise ValueError(f"pooling_strategy {canonical} needs a fine-tuned classification/regression head, which "
                         "bertkit cannot load yet (the fine-tuning issue has not landed); use REDUCE_MEAN, "
                         "CLS_TOKEN, CLS_POOLED, ... instead")
    return {"FIRST_TOKEN": "CLS_TOKEN", "LAST_TOKEN": "SEP_TOKEN"}.get(canonical, canonical)


def last_real_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The vector at index ``mask.sum() - 1`` of each row: ``[SEP]`` for a single text, as the original computes it."""
    index = (mask.sum(dim=1) - 1).clamp(min=0)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


def pool(strategy: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Apply a token-level strategy to ``hidden`` (batch, seq, dim) under the 0/1 ``mask`` (batch, seq).

    NONE keeps every token vector and zeroes the masked ones (padding, and [CLS]/[SEP] under ``mask_cls_sep``).
    CLS_POOLED is not here: it is the model's pooler output, not a function of one layer.
    """
    if strategy == "REDUCE_MEAN":
        return mean_pool(hidden, mask)
    if strategy == "REDUCE_MAX":
        return max_pool(hidden, mask)
    if strategy == "REDUCE_MEAN_MAX":
        return torch.cat([mean_pool(hidden, mask), max_pool(hidden, mask)], dim=-1)
    if strategy == "CLS_TOKEN":
        return cls_pool(hidden, mask)
    if strategy == "SEP_TOKEN":
        return last_real_token(hidden, mask)
    if strategy == "NONE":
        return hidden * mask.unsqueeze(-1).to(hidden.dtype)
    raise ValueError(f"pooling strategy {strategy!r} is not a token-level strategy")
