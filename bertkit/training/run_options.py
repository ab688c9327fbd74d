"""The options every training run shares, declared once, and the one mapping of them to ``TrainingArguments``.

A command's config inherits :class:`StepTrainingOptions` (a run counted in optimizer steps over an endless stream:
pretraining, GPT, seq2seq) or :class:`EpochTrainingOptions` (a run counted in passes over a data set: fine-tuning,
distillation, bi-encoder training) and adds only its own fields; where a command's default differs it redeclares
that field with its own default, nothing else. ``training_arguments()`` is the one place the rules live: steps
from epochs, warm-up from a ratio, evaluations per epoch as a step count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .device import check_spec
from .loop import TrainingArguments
from .options import Options
from .schedule import SCHEDULES
from .threads import check_threads


@dataclass
class TrainingOptions(Options):
    """Optimiser, schedule, precision, checkpoints and output: the options any training run takes."""

    max_steps: int | None = None  # optimizer steps in all (wins over epochs where the run counts epochs)
    learning_rate: float = 1e-4  # peak learning rate
    lr_schedule: str = "linear"  # constant | linear | cosine, after the warm-up
    warmup_steps: int = 0  # steps of linear warm-up
    warmup_ratio: float | None = None  # warm up over this fraction of the steps instead (wins over warmup_steps)
    weight_decay: float = 0.01  # AdamW's decoupled weight decay (not on biases and LayerNorms)
    max_grad_norm: float | None = 1.0  # clip the gradients' norm to this; none: no clipping
    gradient_accumulation_steps: int = 1  # batches summed into one optimizer step
    bf16: bool = False  # compute in bfloat16 autocast
    device: str = "auto"  # auto | cpu | cuda | cuda:N; under torchrun each rank takes cuda:LOCAL_RANK
    seed: int = 0  # seed of the initialisation, the data order and dropout
    threads: int | str | None = None  # torch threads; auto: the first steps time 1 against all, the faster stays
    max_minutes: float | None = None  # a time budget: stop (evaluate, save) once it is spent; 0 or none: no budget
    lr_schedule_clock: str = "steps"  # steps: warm-up / decay over max_steps; budget: over max_minutes (Cramming)
    save_steps: int = 0  # checkpoints every this many steps, to continue with --resume where the command has it
    save_total_limit: int = 2  # checkpoints kept (the newest)
    output_dir: str = "out/run"  # where the model, metrics and checkpoints go
    overwrite: bool = False  # replace an earlier run in output_dir (else refused)
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        self.check_training_options()

    def check_training_options(self) -> None:
        """The shared options' values, checked before any work starts (a ValueError naming the option)."""
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be a positive integer, got {self.max_steps!r}")
        for name in ("gradient_accumulation_steps", "save_total_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "save_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be an integer ≥ 0, got {getattr(self, name)!r}")
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {tuple(SCHEDULES)}, got {self.lr_schedule!r}")
        if self.max_minutes is not None and self.max_minutes < 0:
            raise ValueError(f"max_minutes must be ≥ 0 (0 or none: no budget), got {self.max_minutes}")
        if self.lr_schedule_clock not in ("steps", "budget"):
            raise ValueError(f"lr_schedule_clock must be steps or budget, got {self.lr_schedule_clock!r}")
        if self.lr_schedule_clock == "budget" and not self.max_minutes:
            raise ValueError("lr_schedule_clock budget spreads warm-up and decay over the time budget: set "
                             "max_minutes")
        self.device = check_spec(self.device)
        self.threads = check_threads(self.threads)

    def step_counts(self, batches_per_epoch: int | None = None) -> dict[str, int]:
        """The run's step counts for ``TrainingArguments``: here max_steps as given (the subclasses add theirs)."""
        if self.max_steps is None:
            raise ValueError("max_steps must be a positive integer: this run counts steps, not epochs")
        return {"max_steps": self.max_steps}

    def training_arguments(self, batches_per_epoch: int | None = None, metric_for_best: str | None = None,
                           plot_keys: Sequence[str] | None = None, **extra: Any) -> TrainingArguments:
        """The Trainer's settings: these options, the run's step counts and warm-up, the eval metric that picks the
        best model, the metrics plotted, then ``extra`` (the run's own: head_prefixes, eval_steps …) over them."""
        counts = self.step_counts(batches_per_epoch)
        warmup = (round(self.warmup_ratio * counts["max_steps"]) if self.warmup_ratio is not None
                  else self.warmup_steps)
        shared = {name: getattr(self, name) for name in (
            "output_dir", "learning_rate", "weight_decay", "lr_schedule", "gradient_accumulation_steps",
            "max_grad_norm", "bf16", "device", "seed", "save_steps", "save_total_limit", "max_minutes", "threads",
            "progress", "lr_schedule_clock")}
        given = {"metric_for_best": metric_for_best} | ({"plot_keys": tuple(plot_keys)} if plot_keys else {})
        return TrainingArguments(**(shared | counts | {"warmup_steps": warmup} | given | extra))


@dataclass
class SubwordSampling:
    """Subword regularisation (Kudo 2018) of a run's training text: a SentencePiece tokenizer draws a segmentation
    ∝ p^alpha (Unigram; BPE: dropout alpha) every time the text is tokenized anew; held-out text keeps the best."""

    subword_alpha: float | None = None  # None: off; SentencePiece's alpha (0.1 is its usual value)
    subword_nbest_size: int = -1  # sample among the n best segmentations; -1: among all

    def check_subword_sampling(self) -> bool:
        """Whether sampling is on; a value SentencePiece would not sample with is a clear error."""
        alpha, nbest = self.subword_alpha, self.subword_nbest_size
        if alpha is None:
            if nbest != -1:
                raise ValueError("subword_nbest_size is read with subword_alpha (subword sampling); set both")
            return False
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"subword_alpha must be a number > 0 (SentencePiece's alpha), got {alpha!r}")
        if isinstance(nbest, bool) or not isinstance(nbest, int) or nbest in (0, 1) or nbest < -1:
            raise ValueError(f"subword_nbest_size must be -1 (all segmentations) or ≥ 2 (the n best), got {nbest!r}: "
                             "0 and 1 sample nothing")
        return True


def enable_subword_sampling(tokenizer: Any, options: SubwordSampling, seed: int) -> None:
    """Turn the run's sampling on in ``tokenizer`` (seeded), or say why this tokenizer cannot sample."""
    if not hasattr(tokenizer, "enable_sampling"):
        raise ValueError(f"subword_alpha samples SentencePiece segmentations; {type(tokenizer).__name__} has one "
                         "segmentation per text (train a unigram tokenizer: `bertkit train-tokenizer --model-type "
                         "unigram`)")
    tokenizer.enable_sampling(options.subword_alpha, options.subword_nbest_size, seed=seed)


@dataclass
class StepTrainingOptions(TrainingOptions):
    """A run counted in optimizer steps (an endless stream of batches): logs and evaluations every so many."""

    max_steps: int | None = 1000
    logging_steps: int = 10  # log the loss every this many steps
    eval_steps: int = 0  # evaluate every this many steps (0: at the end only)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.step_counts()  # max_steps: none fails here, before any work
        if self.logging_steps < 1:
            raise ValueError(f"logging_steps must be a positive integer, got {self.logging_steps!r}")
        if self.eval_steps < 0:
            raise ValueError(f"eval_steps must be an integer ≥ 0, got {self.eval_steps!r}")

    def step_counts(self, batches_per_epoch: int | None = None) -> dict[str, int]:
        """The fields as given."""
        return super().step_counts() | {"eval_steps": self.eval_steps, "logging_steps": self.logging_steps}


@dataclass
class EpochTrainingOptions(TrainingOptions):
    """A run counted in passes over a data set: ``epochs`` of it, ``evals_per_epoch`` dev evaluations in each."""

    epochs: int = 3  # passes over the training set
    evals_per_epoch: int = 1  # dev evaluations per epoch
    warmup_ratio: float | None = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("epochs", "evals_per_epoch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")

    def steps_per_epoch(self, batches_per_epoch: int) -> int:
        """Optimizer steps in one pass over ``batches_per_epoch`` batches (a last partial accumulation counts)."""
        return math.ceil(batches_per_epoch / self.gradient_accumulation_steps)

    def step_counts(self, batches_per_epoch: int | None) -> dict[str, int]:
        """max_steps (else epochs of steps); an evaluation every ⌈steps per epoch / evals_per_epoch⌉ steps, so at
        most ``evals_per_epoch`` in an epoch; a log line about twice per evaluation, at most every 50 steps."""
        if batches_per_epoch is None or batches_per_epoch < 1:
            raise ValueError(f"an epoch run needs its batches per epoch (≥ 1), got {batches_per_epoch!r}")
        per_epoch = self.steps_per_epoch(batches_per_epoch)
        eval_steps = max(1, math.ceil(per_epoch / self.evals_per_epoch))
        return {"max_steps": self.max_steps or per_epoch * self.epochs, "eval_steps": eval_steps,
                "logging_steps": max(1, min(50, eval_steps // 2))}

