"""Text generation on any decoder: greedy, sampling and beam search over a :class:`Stepper` (a model that gives the
next token's logits and keeps its own key / value cache), with transformers' logits processors and beam scoring.

``config`` (the settings), ``stepper`` (the interface, and the causal LM's), ``processors`` (temperature, top-k,
top-p, repetition penalty), ``search`` (the loops and :func:`generate`), ``mixin`` (``model.generate``).
"""

from .config import GenerationConfig
from .search import generate
from .stepper import CausalLMStepper, Stepper

__all__ = ["CausalLMStepper", "GenerationConfig", "Stepper", "generate"]
