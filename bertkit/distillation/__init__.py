"""Knowledge distillation: a smaller student from a teacher (DistilBERT's layer copy, TinyBERT's narrow student).

``distill(config)`` runs task distillation (a fine-tuned classifier) or embedding distillation (a sentence encoder)
by ``config.mode``; the losses, student construction and the two runs are one file each.
"""

from __future__ import annotations

from typing import Any

from .config import DistillConfig
from .losses import DistillationLoss, attention_mse, hidden_cosine, hidden_mse, similarity_kl, soft_target_loss
from .student import (
    copied_student,
    every_other_layer,
    narrow_student,
    search_layers,
    slim_feed_forward,
    student_from_layers,
)


def distill(config: DistillConfig) -> dict[str, Any]:
    """Run the config's distillation; returns (and writes to ``output_dir/results.json``) the side-by-side table."""
    if config.mode == "embedding":
        from .embedding import distill_embeddings

        return distill_embeddings(config)
    from .task import distill_task

    return distill_task(config)


__all__ = ["DistillConfig", "DistillationLoss", "attention_mse", "copied_student", "distill", "every_other_layer",
           "hidden_cosine", "hidden_mse", "narrow_student", "search_layers", "similarity_kl", "slim_feed_forward",
           "soft_target_loss", "student_from_layers"]
