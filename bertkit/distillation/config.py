"""DistillConfig: every option of ``bertkit distill``, from YAML with ``key=value`` overrides."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..atomic import write_text_atomic
from ..training.run_options import EpochTrainingOptions
from ..training.state import check_output_dir
from ..training.threads import cpu_threads
from .losses import check_temperature

MODES = ("task", "embedding")


# settings one mode reads and the other does not (similarity_weight is checked on its own, above)
TASK_ONLY = ("alpha", "beta", "temperature", "hidden_weight", "attention_weight", "layer_map", "dataset",
             "limit_train", "augment_copies")
EMBEDDING_ONLY = ("max_texts", "similarity_temperature")


@dataclass
class DistillConfig(EpochTrainingOptions):
    """A teacher, the student to build from it, the losses, and how to train."""

    KIND: ClassVar[str] = "distillation"
    ALIASES: ClassVar[dict[str, str]] = {"lr": "learning_rate"}

    mode: str = "task"  # task: a fine-tuned classifier's logits; embedding: a sentence encoder's vectors
    teacher: str | None = None  # task: a fine-tuned folder (required); embedding: default the installed MiniLM
    # the student: copied teacher layers (student_layers, default every other), or narrower from random weights
    student_num_layers: int = 3
    student_layers: list[int] | None = None  # teacher layers (0-based) the student starts from
    layer_search: bool = False  # copied layers chosen by the dev score of candidate students (student.search_layers)
    student_hidden_size: int | None = None  # set: a narrower student from random weights (TinyBERT)
    student_heads: int | None = None
    student_intermediate_size: int | None = None  # narrower: FFN width; copied layers: FFN neurons kept
    student_model: str | None = None  # a smaller pretrained folder of the teacher's vocabulary to start from
    # task losses: alpha·KL(T) + beta·task + hidden_weight·MSE + cosine_weight·(1−cos) + attention_weight·MSE(maps);
    # embedding: MSE of the vectors + cosine_weight·(1−cos) + similarity_weight·KL(in-batch similarities)
    alpha: float = 0.5
    beta: float = 0.5
    temperature: float = 2.0
    hidden_weight: float = 0.0
    cosine_weight: float = 0.0
    attention_weight: float = 0.0
    similarity_weight: float = 0.0  # embedding: + weight·KL of in-batch similarity rankings (losses.similarity_kl)
    similarity_temperature: float = 0.05
    layer_map: list[int] | None = None  # teacher layer (1-based) for each student layer; default m·N/M
    # data: task mode reads the teacher's data set; embedding mode unlabeled texts (see embedding_data.py)
    dataset: str | None = "rotten_tomatoes"
    train_file: str | None = None  # task: labelled files instead of a named set (as bertkit finetune reads them);
    # embedding: sentences, one a line (else the installed pages and reviews)
    dev_file: str | None = None  # embedding: (query, passage) pairs scored by MRR@10 (else the installed dev pages)
    test_file: str | None = None  # embedding: (query, passage) pairs (else the installed test pages)
    limit_train: int | None = None
    augment_copies: int = 0  # task: new unlabeled sentences per training one, labelled by the teacher (augment.py)
    max_texts: int = 20000  # embedding: unlabeled sentences at most
    max_length: int | None = None  # default: the teacher's
    # optimisation (the shared options, bertkit.training.run_options; these defaults are distillation's own)
    seed: int = 42
    output_dir: str = "out/distill"
    batch_size: int = 32
    eval_batch_size: int = 64
    speed_rounds: int = 3  # encode-speed timing: alternating teacher / student rounds, the fastest of each kept

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        check_temperature(self.temperature)
        for name in ("student_num_layers", "batch_size", "eval_batch_size", "speed_rounds", "max_texts"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.augment_copies, int) or self.augment_copies < 0:
            raise ValueError(f"augment_copies must be an integer ≥ 0, got {self.augment_copies!r}")
        check_temperature(self.similarity_temperature)
        if self.mode == "task" and self.similarity_weight:
            raise ValueError("similarity_weight relates sentence vectors: it applies to mode: embedding only")
        self.refuse_other_modes_settings()
        for name in ("alpha", "beta", "hidden_weight", "cosine_weight", "attention_weight", "similarity_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.student_layers is not None and self.student_hidden_size is not None:
            raise ValueError("student_layers copies teacher layers (the teacher's width); student_hidden_size builds "
                             "a narrower student from random weights: give one of them")
        if self.student_model is not None and (self.student_layers is not None or self.student_hidden_size):
            raise ValueError("student_model is a ready student: student_layers / student_hidden_size do not apply")
        if self.layer_search and (self.student_layers is not None or self.student_hidden_size is not None
                                  or self.student_model is not None):
            raise ValueError("layer_search chooses the teacher layers to copy: it does not go with student_layers, "
                             "student_hidden_size or student_model")
        if self.student_layers is not None:
            self.student_num_layers = len(self.student_layers)
        if self.mode == "task" and not self.teacher:
            raise ValueError("task distillation needs teacher: a fine-tuned model folder (bertkit finetune's best/)")

    def refuse_other_modes_settings(self) -> None:
        """A setting only the other mode reads, given a value of its own, is refused: it would be ignored."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        other = TASK_ONLY if self.mode == "embedding" else EMBEDDING_ONLY
        given = [name for name in other if getattr(self, name) != defaults[name]]
        if given:
            raise ValueError(f"{', '.join(given)} {'apply' if len(given) > 1 else 'applies'} to mode: "
                             f"{'task' if self.mode == 'embedding' else 'embedding'} only; mode {self.mode} does not "
                             "read them")

    def guarded_run(self, distill: Callable[[DistillConfig], dict[str, Any]]) -> dict[str, Any]:
        """``distill(self)`` into a fresh (or overwritable) ``output_dir``, on ``threads`` CPU threads."""
        check_output_dir(self.output_dir, False, self.overwrite, resumable=False)
        with cpu_threads(self.threads):
            return distill(self)

    def save_results(self, result: dict[str, Any], seconds: dict[str, float], summary: str) -> dict[str, Any]:
        """``result`` with the speed-up (``seconds`` of teacher and student), the machine and these settings, written
        to ``output_dir/results.json``; ``summary`` and the speed-up printed."""
        result |= {"speedup": seconds["teacher"] / seconds["student"], "threads": torch.get_num_threads(),
                   "machine": platform.processor() or platform.machine(), "config": self.to_dict()}
        write_text_atomic(Path(self.output_dir) / "results.json", json.dumps(result, indent=2) + "\n")
        print(f"{summary}, {result['speedup']:.2f}× faster", file=sys.stderr)
        return result
