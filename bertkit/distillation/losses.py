"""Distillation losses: what a student is trained to match in its teacher.

- soft targets (Hinton et al. 2015; DistilBERT): KL(teacher ‖ student) of the logits softened by a temperature T,
  times T² so that its gradients keep their size as T changes;
- hidden states (TinyBERT's MSE, DistilBERT's cosine) of mapped layers, through a learned projection W_h when the
  student is narrower;
- attention maps (TinyBERT) of mapped layers: MSE of the probabilities.

:class:`DistillationLoss` weighs them with the task loss: ``α·KL + β·task + γ_h·MSE_h + γ_cos·cos + γ_a·MSE_a``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def check_temperature(temperature: float) -> float:
    """A softmax temperature must be a positive number."""
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return float(temperature)


def soft_target_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the batch (rows are examples)."""
    t = check_temperature(temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: do the two models have the same labels?")
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)
    return kl.mean() * t * t


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of (batch, seq, …) ``values`` over the real tokens of ``mask`` (batch, seq); all of them without one."""
    if mask is None:
        return values.mean()
    keep = mask.to(values.dtype).reshape(*mask.shape, *([1] * (values.dim() - 2)))
    per_token = values[0, 0].numel()
    return (values * keep).sum() / (keep.sum() * per_token).clamp(min=1)


def hidden_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error of (batch, seq, hidden) states over real tokens (TinyBERT's hidden-state loss)."""
    return _masked_mean((student.float() - teacher.float()) ** 2, mask)


def hidden_cosine(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 − cosine of each token's student and teacher state, averaged over real tokens (DistilBERT's L_cos)."""
    cosine = F.cosine_similarity(student.float(), teacher.float(), dim=-1)
    return _masked_mean((1.0 - cosine)[..., None], mask)


def similarity_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """Relational distillation of (batch, dim) sentence vectors: for each row, KL(teacher ‖ student) of the softmax
    over its cosine similarities to the batch's other rows, divided by ``temperature`` — the neighbours' ranking
    that retrieval reads, rather than each vector alone."""
    t = check_temperature(temperature)
    if student.shape[0] < 2:
        return student.sum() * 0.0  # no other row to relate to
    others = ~torch.eye(student.shape[0], dtype=torch.bool, device=student.device)

    def relations(vectors: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(vectors.float(), dim=-1)
        return (unit @ unit.T)[others].view(len(unit), -1) / t

    return soft_target_loss(relations(student), relations(teacher), 1.0)


def attention_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MSE of (batch, heads, seq, seq) attention probabilities, over the rows of real query tokens.

    With different head counts (a narrower student), each side's maps are averaged over its heads first.
    """
    if student.shape[1] != teacher.shape[1]:
        student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
    squared = ((student.float() - teacher.float()) ** 2).transpose(1, 2)  # (batch, seq_q, heads, seq_k)
    return _masked_mean(squared, mask)


def uniform_layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """TinyBERT's g(m) = m·N/M: student layer m (1-based) learns from teacher layer m·N/M (the last from the last)."""
    return [(m + 1) * teacher_layers // student_layers for m in range(student_layers)]


def check_layer_map(layer_map: Sequence[int], student_layers: int, teacher_layers: int) -> list[int]:
    """A map gives, for each student layer (1 … M), the teacher layer (1 … N) it learns from."""
    layer_map = list(layer_map)
    if len(layer_map) != student_layers:
        raise ValueError(f"layer_map has {len(layer_map)} entries but the student has {student_layers} layers: give "
                         "one teacher layer per student layer")
    bad = [t for t in layer_map if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t <= teacher_layers]
    if bad:
        raise ValueError(f"layer_map entries must be teacher layers 1 … {teacher_layers} (hidden state 0 is the "
                         f"embeddings, matched automatically); out of range: {bad}")
    return layer_map


class DistillationLoss(nn.Module):
    """The weighted sum of the losses above; owns W_h (student width → teacher width) when the widths differ.

    ``forward`` takes the two models' outputs: ``logits`` (or None), ``hidden_states`` (embeddings + every layer)
    and ``attentions`` (every layer), as transformers' ``output_hidden_states`` / ``output_attentions`` give them.
    """

    def __init__(self, student_width: int, teacher_width: int, student_layers: int, teacher_layers: int,
                 alpha: float = 0.5, beta: float = 0.5, temperature: float = 2.0, hidden_weight: float = 0.0,
                 cosine_weight: float = 0.0, attention_weight: float = 0.0, layer_map: Sequence[int] | None = None):
        super().__init__()
        self.temperature = check_temperature(temperature)
        for name, value in (("alpha", alpha), ("beta", beta), ("hidden_weight", hidden_weight),
                            ("cosine_weight", cosine_weight), ("attention_weight", attention_weight)):
            if value < 0:
                raise ValueError(f"{name} must be ≥ 0, got {value}")
        self.alpha, self.beta = alpha, beta
        self.hidden_weight, self.cosine_weight, self.attention_weight = hidden_weight, cosine_weight, attention_weight
        self.layer_map = check_layer_map(layer_map if layer_map is not None else
                                         uniform_layer_map(student_layers, teacher_layers),
                                         student_layers, teacher_layers)
        if cosine_weight and student_width != teacher_width:
            raise ValueError("the cosine loss compares states of equal width; the student is "
                             f"{student_width} wide, the teacher {teacher_width}: use hidden_weight (MSE through W_h)")
        # TinyBERT's W_h: one projection shared by every mapped layer (and the embeddings)
        self.projection = nn.Linear(student_width, teacher_width, bias=False) if student_width != teacher_width \
            else None

    @property
    def needs_hidden_states(self) -> bool:
        return bool(self.hidden_weight or self.cosine_weight)

    @property
    def needs_attentions(self) -> bool:
        return bool(self.attention_weight)

    def pairs(self) -> list[tuple[int, int]]:
        """(student hidden-state index, teacher hidden-state index): the embeddings, then each mapped layer."""
        return [(0, 0)] + [(m + 1, t) for m, t in enumerate(self.layer_map)]

    def forward(self, student: dict, teacher: dict, task_loss: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """The total loss and each weighted part's value (for the metrics log)."""
        parts: dict[str, torch.Tensor] = {}
        if self.alpha and student.get("logits") is not None:
            parts["kl"] = self.alpha * soft_target_loss(student["logits"], teacher["logits"], self.temperature)
        if self.beta and task_loss is not None:
            parts["task"] = self.beta * task_loss
        if self.needs_hidden_states:
            pairs = [(student["hidden_states"][s], teacher["hidden_states"][t]) for s, t in self.pairs()]
            if self.hidden_weight:
                project = self.projection or (lambda x: x)
                mse = sum(hidden_mse(project(s), t, attention_mask) for s, t in pairs)
                parts["hidden"] = self.hidden_weight * mse / len(pairs)
            if self.cosine_weight:
                cos = sum(hidden_cosine(s, t, attention_mask) for s, t in pairs)
                parts["cosine"] = self.cosine_weight * cos / len(pairs)
        if self.attention_weight:
            maps = [(student["attentions"][m], teacher["attentions"][t - 1]) for m, t in enumerate(self.layer_map)]
            parts["attention"] = self.attention_weight * sum(attention_mse(s, t, attention_mask) for s, t in maps) \
                / len(maps)
        if not parts:
            raise ValueError("nothing to learn: every loss weight is 0 (or the model gives no logits for alpha)")
        total = sum(parts.values())
        return total, {f"loss_{k}": float(v.detach()) for k, v in parts.items()}
