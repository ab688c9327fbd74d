"""The base every fine-tuning task builds on (:mod:`.tasks`' sequence and token tasks, :mod:`.qa`'s spans): the
Trainer's step and batched inference, and the padded inputs of a list of features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..encoding.batching import pad_batch, pad_rows, sorted_batches
from ..encoding.precision import autocast
from ..training.device import model_device, move_batch
from .config import FinetuneConfig
from .data import LabelMap


def inputs_of(features: Sequence[dict[str, Any]], pad_id: int, multiple: int = 1) -> dict[str, torch.Tensor]:
    """input_ids, token_type_ids and attention_mask of a list of features, right-padded to the longest (rounded up
    to ``multiple``: the local attention window)."""
    input_ids, attention_mask = pad_batch([f["input_ids"] for f in features], pad_id, multiple=multiple)
    return {"input_ids": input_ids, "token_type_ids": pad_rows([f["token_type_ids"] for f in features], 0, multiple),
            "attention_mask": attention_mask}


class Task:
    """The parts every task shares: the step function and batched inference."""

    def __init__(self, config: FinetuneConfig, tokenizer, labels: LabelMap):
        self.config, self.tokenizer, self.labels = config, tokenizer, labels
        self.pad_id = tokenizer.pad_token_id
        self.pad_multiple = config.local_window if config.attention == "local" else 1  # the kernel's block size

    def compute(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The Trainer's step: the model's loss, and how many real tokens the batch held (for tokens/s)."""
        out = model(**batch)
        return out.loss, {"tokens": float(batch["attention_mask"].sum())}

    def run(self, model: nn.Module, features: list[dict[str, Any]]) -> list[Any]:
        """The model's outputs for every feature (in feature order), in eval mode, without gradients."""
        was_training = model.training
        model.eval()
        outputs: list[Any] = [None] * len(features)
        device = model_device(model)
        with torch.no_grad():
            for batch in sorted_batches([len(f["input_ids"]) for f in features], self.config.eval_batch_size):
                chosen = [features[i] for i in batch]
                with autocast(model):
                    out = model(**move_batch(inputs_of(chosen, self.pad_id, self.pad_multiple), device))
                for row, i in enumerate(batch):
                    outputs[i] = self.unpack(out, row, len(chosen[row]["input_ids"]))
        model.train(was_training)
        return outputs

    def unpack(self, out: Any, row: int, length: int) -> Any:
        return out.logits[row].float().cpu().numpy()

    def length(self, feature: dict[str, Any]) -> int:
        return len(feature["input_ids"])
