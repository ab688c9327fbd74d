"""Layer 2: pretraining — corpus → documents → instances (NSP / SOP / full sentences) → masking → training."""

from .config import PretrainingConfig
from .masking import MaskingConfig, mask_instance
from .run import run_pretraining

__all__ = ["MaskingConfig", "PretrainingConfig", "mask_instance", "run_pretraining"]
