"""Layer 2: what pretraining and fine-tuning share — optimizer groups, schedules, the loop, checkpoints, metrics."""

from .loop import Trainer, TrainingArguments
from .optim import build_optimizer, parameter_groups
from .schedule import SCHEDULES, build_scheduler

__all__ = ["SCHEDULES", "Trainer", "TrainingArguments", "build_optimizer", "build_scheduler", "parameter_groups"]
