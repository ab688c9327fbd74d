"""NumbersConfig: every setting of a numbers ↔ words run, read from YAML and overridable on the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..training.run_options import StepTrainingOptions


@dataclass
class NumbersConfig(StepTrainingOptions):
    """Data, model, optimisation and evaluation of the encoder-decoder trained on numbers ↔ words."""

    KIND: ClassVar[str] = "seq2seq"

    languages: list[str] = field(default_factory=lambda: ["en", "fr", "de", "es"])
    max_number: int = 10000  # numbers 0 … max_number - 1
    heldout_fraction: float = 0.1  # of the numbers: never trained on, in any language or direction
    tokens: str = "words"  # "words": digits, words and German numeral parts; "chars": characters
    # "translation": numbers ↔ words (bertkit's Transformer); "span_corruption": a T5 pretrained on the number words
    # with T5's objective (seq2seq/span_run.py): noise_density of the pieces hidden in spans of mean length
    # mean_noise_span_length, behind num_sentinels <extra_id_N> at the top of the vocabulary
    objective: str = "translation"
    noise_density: float = 0.15
    mean_noise_span_length: float = 3.0
    num_sentinels: int = 100
    eval_examples: int = 400  # held-out pairs decoded greedily at each evaluation during training
    test_examples: int = 0  # held-out pairs of the final greedy and beam evaluation; 0: all of them
    num_hidden_layers: int = 3  # encoder layers
    decoder_layers: int = 3
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "relu"
    norm_first: bool = False
    dropout: float = 0.1
    max_position_embeddings: int = 128
    batch_size: int = 64
    label_smoothing: float = 0.0
    num_beams: int = 4
    max_new_tokens: int = 96
    # the shared training options (bertkit.training.run_options) with this command's defaults
    max_steps: int | None = 3000
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    max_minutes: float | None = 15.0  # stop (evaluated, saved) once this much training time is spent
    eval_steps: int = 250
    logging_steps: int = 25
    threads: int | str | None = 1  # torch threads: the machine is shared
    output_dir: str = "out/seq2seq-numbers"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in ("translation", "span_corruption"):
            raise ValueError(f"objective must be 'translation' or 'span_corruption', got {self.objective!r}")
        if self.tokens not in ("words", "chars"):
            raise ValueError(f"tokens must be 'words' or 'chars', got {self.tokens!r}")
        if not self.languages:
            raise ValueError("languages: give at least one (num2words codes: en, fr, de, es, …)")
        for name in ("batch_size", "num_beams", "max_new_tokens", "eval_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
