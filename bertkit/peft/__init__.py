"""Parameter-efficient fine-tuning: train a few parameters of a frozen model, on any architecture of the family.

One method a file: ``lora`` (LoRA), ``adapters`` (Houlsby / Pfeiffer bottlenecks), ``prefix`` (prefix tuning,
P-tuning v2), ``prompt`` (prompt tuning, P-tuning); BitFit and head-only are choices of what to unfreeze
(``apply``). ``config`` names them; ``targets`` finds the projections a method wraps by name; ``folders`` writes and
reads ``peft``'s adapter folders.
"""

from .apply import apply_peft, merge_lora, trainable_parameters
from .config import METHODS, PeftConfig

__all__ = ["METHODS", "PeftConfig", "apply_peft", "merge_lora", "trainable_parameters"]
