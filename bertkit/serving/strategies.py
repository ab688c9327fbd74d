"""bert-as-service's pooling strategies: token vectors of the chosen layer(s) → what the server returns.

The numbers are the original enum's values (``show_server_config`` reports them); CLS_TOKEN / FIRST_TOKEN and
SEP_TOKEN / LAST_TOKEN are the same strategy under two names. No torch here: settings are checked before any
model is loaded (the pooling itself is in ``embedding.py``).
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
