"""Pooling lives in :mod:`bertkit.encoding.pooling`; this module keeps the old import path working."""

from .encoding.pooling import (  # noqa: F401
    POOLING_MODES,
    POOLING_STRATEGIES,
    TOKEN_POOLING,
    Pooling,
    cls_pool,
    max_pool,
    mean_pool,
)
