"""GenerationConfig: how to pick the next tokens, with transformers' names, defaults and meanings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GenerationConfig:
    """Settings of :func:`bertkit.generation.generate`; each checked when built (``replace`` re-checks)."""

    max_new_tokens: int = 20
    do_sample: bool = False
    num_beams: int = 1
    temperature: float = 1.0  # sampling only, as transformers: greedy and beam search ignore the warpers
    top_k: int = 50  # sampling only; 0: no top-k
    top_p: float = 1.0  # sampling only; 1: no nucleus cut
    repetition_penalty: float = 1.0  # CTRL's: a seen token's logit divided (> 0) or multiplied (< 0) by it
    length_penalty: float = 1.0  # beam search: a finished beam scores sum log p / generated length ** this
    early_stopping: bool | str = False  # beam search: True, False (heuristic) or "never", as transformers
    eos_token_id: list[int] = field(default_factory=list)  # stop tokens: a row ends when it emits one
    pad_token_id: int | None = None  # fills rows that have ended (default: the first stop token)
    use_cache: bool = True  # keep keys / values of earlier positions (False: recompute the whole sequence)

    def __post_init__(self) -> None:
        if isinstance(self.eos_token_id, int) and not isinstance(self.eos_token_id, bool):
            self.eos_token_id = [self.eos_token_id]
        elif self.eos_token_id is None:
            self.eos_token_id = []
        self.eos_token_id = list(self.eos_token_id)
        _check_int("max_new_tokens", self.max_new_tokens, 1)
        _check_int("num_beams", self.num_beams, 1)
        _check_int("top_k", self.top_k, 0)
        for name in ("do_sample", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not _is_number(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a number > 0, got {self.temperature!r} (for greedy decoding "
                             "use do_sample=False)")
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must lie in (0, 1], got {self.top_p!r}")
        if not _is_number(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be a number > 0 (1: none), got {self.repetition_penalty!r}")
        if not _is_number(self.length_penalty):
            raise ValueError(f"length_penalty must be a number, got {self.length_penalty!r}")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"early_stopping must be true, false or 'never', got {self.early_stopping!r}")
        for token in self.eos_token_id:
            _check_int("a stop token id (eos_token_id)", token, 0)
        if self.pad_token_id is not None:
            _check_int("pad_token_id", self.pad_token_id, 0)

    @property
    def fill_token_id(self) -> int | None:
        """What ended rows receive: ``pad_token_id``, else the first stop token (transformers' default)."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        return self.eos_token_id[0] if self.eos_token_id else None

    def replace(self, **settings: Any) -> GenerationConfig:
        """A copy with some settings changed; an unknown name is an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown generation setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **settings)

    def check_vocabulary(self, vocab_size: int) -> None:
        """Settings that depend on the model: stop / pad tokens inside the vocabulary, no more beams than tokens."""
        for token in self.eos_token_id:
            if token >= vocab_size:
                raise ValueError(f"stop token {token} is outside the vocabulary of {vocab_size} tokens")
        if self.pad_token_id is not None and self.pad_token_id >= vocab_size:
            raise ValueError(f"pad_token_id {self.pad_token_id} is outside the vocabulary of {vocab_size} tokens")
        if self.num_beams > vocab_size:
            raise ValueError(f"num_beams={self.num_beams} exceeds the vocabulary of {vocab_size} tokens")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
