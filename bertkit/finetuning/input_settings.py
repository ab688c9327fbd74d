"""How a fine-tuned model's inputs were prepared — max_length, the long-text strategy, the attention kernel … —
kept with the model (config.json's ``finetuning`` object) so that predict, serve and distillation prepare theirs
the same way. One typed record, written by training and read by everything after it."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..training.options import coerce, suggestions

if TYPE_CHECKING:
    from .config import FinetuneConfig

WORDS = ("whitespace", "chars")  # token classification: words split at whitespace, or one per character (Chinese)


@dataclass(frozen=True)
class InputSettings:
    """The input side of a fine-tuning run; field names and defaults are ``FinetuneConfig``'s."""

    task: str = "classification"
    max_length: int = 128
    long_text: str = "head"
    head_tokens: int | str = "auto"
    window_stride: int | None = None
    window_aggregation: str = "mean"
    key_sentence_model: str | None = None
    max_chunks: int = 16
    doc_stride: int = 128
    max_answer_length: int = 30
    n_best: int = 20
    columns: dict[str, str] = field(default_factory=dict)
    attention: str = "full"
    local_window: int = 256
    words: str = "whitespace"

    def __post_init__(self) -> None:
        if self.words not in WORDS:
            raise ValueError(f"words must be one of {WORDS}, got {self.words!r}")

    @classmethod
    def of_run(cls, config: FinetuneConfig, words: str) -> InputSettings:
        """What a run's config says about its inputs (``words``: how its NER examples were split)."""
        return cls(**{name: getattr(config, name) for name in cls.run_fields()}, words=words)

    @classmethod
    def run_fields(cls) -> tuple[str, ...]:
        """The settings that are ``FinetuneConfig`` options (all but ``words``, which training finds in the data)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "words")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> InputSettings:
        """Read config.json's ``finetuning`` object: unknown keys refused by name, values typed by field (an older
        folder's missing keys take today's defaults, which are what it was trained with)."""
        if not isinstance(values, dict):
            raise ValueError(f"config.json's 'finetuning' must be an object of input settings, got {values!r}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"config.json's 'finetuning' has setting(s) bertkit does not know: {unknown}"
                             f"{suggestions(unknown, known)}; refusing rather than preparing inputs differently")
        hints = typing.get_type_hints(cls)
        return cls(**{name: coerce(name, value, hints[name]) for name, value in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object config.json keeps."""
        return dataclasses.asdict(self)

    def run_options(self) -> dict[str, Any]:
        """The settings as ``FinetuneConfig`` options, to prepare inputs as the run did."""
        return {name: getattr(self, name) for name in self.run_fields()}
