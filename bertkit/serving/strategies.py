"""bert-as-service's pooling strategies: token vectors of the chosen layer(s) → what the server returns.

The numbers are the original enum's values (``show_server_config`` reports them); CLS_TOKEN / FIRST_TOKEN and
SEP_TOKEN / LAST_TOKEN are the same strategy under two names. No torch here: settings are checked before any
model is loaded (the pooling itself is ``bertkit.encoding.pooling``, called from ``embedding.py``).
"""

from __future__ import annotations

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
# The strategies that pool a layer, as bertkit's pooling modes (bertkit.encoding.pooling does the pooling).
# CLS_TOKEN and SEP_TOKEN keep the [CLS] / [SEP] vectors under mask_cls_sep, as bert-as-service documents.
STRATEGY_MODES = {"REDUCE_MEAN": ("mean",), "REDUCE_MAX": ("max",), "REDUCE_MEAN_MAX": ("mean", "max"),
                  "CLS_TOKEN": ("cls",), "SEP_TOKEN": ("lasttoken",)}
FINE_TUNED = ("CLASSIFICATION", "REGRESSION")  # served from a `bertkit finetune` model, see fine_tuned.py


def checked_strategy(name: str) -> str:
    """The canonical upper-case name of a strategy; an unknown name is a clear error."""
    canonical = str(name).strip().upper()
    if canonical not in STRATEGY_IDS:
        raise ValueError(f"unknown pooling_strategy {name!r}; choose one of {', '.join(STRATEGY_IDS)}")
    return {"FIRST_TOKEN": "CLS_TOKEN", "LAST_TOKEN": "SEP_TOKEN"}.get(canonical, canonical)
