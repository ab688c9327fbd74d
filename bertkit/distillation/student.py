"""Students: a teacher's architecture with fewer layers (copied from chosen teacher layers, as DistilBERT starts
from every other layer of BERT), optionally with a slimmer feed-forward (its most important neurons kept), or a
narrower one from random weights (TinyBERT), with the teacher's vocabulary.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from ..config import BertConfig


def every_other_layer(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layers (0-based) a student of ``student_layers`` starts from: 0, 2, 4, … as DistilBERT took them,
    spread evenly when the student is not half the teacher."""
    if not 1 <= student_layers <= teacher_layers:
        raise ValueError(f"a student needs 1 … {teacher_layers} layers (the teacher's count), got {student_layers}")
    if 2 * student_layers == teacher_layers:
        return list(range(0, teacher_layers, 2))
    return [round(i * (teacher_layers - 1) / max(1, student_layers - 1)) for i in range(student_layers)] \
        if student_layers > 1 else [0]


def check_layers(layers: Sequence[int], teacher_layers: int) -> list[int]:
    """Chosen teacher layers: distinct, increasing, each in 0 … teacher_layers − 1."""
    layers = list(layers)
    if not layers:
        raise ValueError("student_layers is empty: choose at least one teacher layer")
    bad = [i for i in layers if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < teacher_layers]
    if bad:
        raise ValueError(f"student_layers must be teacher layers 0 … {teacher_layers - 1}; out of range: {bad}")
    if layers != sorted(set(layers)):
        raise ValueError(f"student_layers must be distinct and increasing, got {layers}")
    return layers


def _encoder_config(model: nn.Module) -> BertConfig:
    config = model.config
    if config.num_hidden_groups is not None:
        raise ValueError("ALBERT shares its layers between steps: there are no separate layers to copy")
    return config


def student_from_layers(teacher: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A model of the teacher's class with ``len(layers)`` layers; layer i is a copy of teacher layer
    ``layers[i]``, every other weight (embeddings, pooler, head) a copy of the teacher's."""
    config = _encoder_config(teacher)
    layers = check_layers(layers, config.num_hidden_layers)
    student = type(teacher)(dataclasses.replace(config, num_hidden_layers=len(layers)))
    renumber = {str(old): str(new) for new, old in enumerate(layers)}
    state = {}
    for name, tensor in teacher.state_dict().items():
        match = re.search(r"(^|\.)encoder\.layer\.(\d+)\.", name)
        if match is None:
            state[name] = tensor.clone()
        elif match.group(2) in renumber:
            start, end = match.span(2)
            state[name[:start] + renumber[match.group(2)] + name[end:]] = tensor.clone()
    student.load_state_dict(state, strict=True)
    return student.train(teacher.training)


def search_layers(teacher: nn.Module, num_layers: int, score: Callable[[nn.Module], float]) -> list[int]:
    """Teacher layers for a copied student, chosen by ``score`` (higher is better, e.g. dev MRR@10) of the student
    as copied, before any training: the last layer stays (pooling and heads read its output), then greedily the
    layer whose addition scores best, until ``num_layers`` — (N − 1) + (N − 2) + … trials, not every subset."""
    total = _encoder_config(teacher).num_hidden_layers
    if not 1 <= num_layers <= total:
        raise ValueError(f"a student needs 1 … {total} layers (the teacher's count), got {num_layers}")
    chosen = [total - 1]
    while len(chosen) < num_layers:
        trials = {i: score(student_from_layers(teacher, sorted([*chosen, i]))) for i in range(total) if i not in chosen}
        best = max(trials, key=trials.__getitem__)
        chosen = sorted([*chosen, best])
        print("layer search: " + ", ".join(f"+{i} {value:.4f}" for i, value in trials.items())
              + f" → {chosen}", file=sys.stderr)
    return chosen


def feed_forward_importance(w_in: torch.Tensor, w_out: torch.Tensor) -> torch.Tensor:
    """Per feed-forward neuron i: ‖row i of W_in‖ · ‖column i of W_out‖, a data-free bound on how much it passes on."""
    return w_in.norm(dim=1) * w_out.norm(dim=0)


def slim_feed_forward(model: nn.Module, intermediate_size: int) -> nn.Module:
    """The model with every layer's feed-forward cut to its ``intermediate_size`` most important neurons
    (:func:`feed_forward_importance`, kept in their order): the same function minus the dropped neurons' share."""
    config = _encoder_config(model)
    if not 1 <= intermediate_size <= config.intermediate_size:
        raise ValueError(f"student_intermediate_size must be 1 … {config.intermediate_size} (the teacher's "
                         f"feed-forward width) for a student of copied layers, got {intermediate_size}")
    state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    for name in [n for n in state if re.search(r"(^|\.)encoder\.layer\.\d+\.intermediate\.dense\.weight$", n)]:
        layer = name[: -len("intermediate.dense.weight")]
        w_out = state[layer + "output.dense.weight"]
        keep = feed_forward_importance(state[name], w_out).topk(intermediate_size).indices.sort().values
        state[name] = state[name][keep]
        state[layer + "intermediate.dense.bias"] = state[layer + "intermediate.dense.bias"][keep]
        state[layer + "output.dense.weight"] = w_out[:, keep]
    slim = type(model)(dataclasses.replace(config, intermediate_size=intermediate_size))
    slim.load_state_dict(state, strict=True)
    return slim.train(model.training)


def copied_student(teacher: nn.Module, num_layers: int, layers: Sequence[int] | None = None,
                   intermediate_size: int | None = None) -> nn.Module:
    """Teacher layers ``layers`` (default: every other one, ``num_layers`` of them), their feed-forward slimmed to
    ``intermediate_size`` neurons when given."""
    student = student_from_layers(teacher, layers or every_other_layer(teacher.config.num_hidden_layers, num_layers))
    return slim_feed_forward(student, intermediate_size) if intermediate_size else student


def narrow_student(teacher: nn.Module, num_layers: int, hidden_size: int, num_heads: int | None = None,
                   intermediate_size: int | None = None, seed: int = 0) -> nn.Module:
    """A model of the teacher's class and vocabulary, ``num_layers`` × ``hidden_size`` wide, from random weights
    (TinyBERT's students); heads default to 64-wide ones, the FFN to 4 × hidden."""
    config = _encoder_config(teacher)
    heads = num_heads or max(1, hidden_size // 64)
    shape = dict(num_hidden_layers=num_layers, hidden_size=hidden_size, num_attention_heads=heads,
                 intermediate_size=intermediate_size or 4 * hidden_size, embedding_size=None)
    torch.manual_seed(seed)
    return type(teacher)(dataclasses.replace(config, **shape)).train(teacher.training)


def read_vocab(folder: str | Path) -> list[str] | None:
    """A model folder's WordPiece vocabulary (vocab.txt), or None when it has none."""
    path = Path(folder) / "vocab.txt"
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else None


def check_same_vocabulary(teacher_folder: str | Path, student_folder: str | Path) -> None:
    """Distillation compares the two models token by token: their vocabularies must be one and the same."""
    teacher, student = read_vocab(teacher_folder), read_vocab(student_folder)
    if teacher is None or student is None:
        missing = teacher_folder if teacher is None else student_folder
        raise ValueError(f"{missing} has no vocab.txt: cannot check that teacher and student share a vocabulary")
    if teacher != student:
        pairs = zip(teacher, student, strict=False)
        differ = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(teacher), len(student)))
        raise ValueError(f"teacher and student have different vocabularies ({len(teacher):,} vs {len(student):,} "
                         f"tokens, first difference at id {differ}): a student must use the teacher's tokenizer")
