"""The pretraining step and its evaluation: ``L = L_mlm + L_nsp``, with the vocabulary projection run only on the
masked positions (the MLM decoder is most of the step when it runs on every position); a batch with StructBERT's
shuffled trigrams (``word_order_labels``) adds ``L_word`` (word_order.py)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..model.heads import IGNORE_INDEX
from ..training.device import model_device, move_batch
from .word_order import word_order_step


def pretraining_step(model: nn.Module, batch: dict[str, torch.Tensor], pair_task: bool = True
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one batch for a pretraining model (``BertForPreTraining``, ``RobertaForMaskedLM``, … or its DDP
    wrapper), plus accuracies and the token count."""
    if "word_order_labels" in batch:
        return word_order_step(model, batch, pair_task)
    labels = batch["labels"]
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=labels,
                next_sentence_label=batch["next_sentence_label"] if pair_task else None, return_logits=False)
    targets = labels[labels != IGNORE_INDEX]
    stats = {"mlm_loss": out.mlm_loss.item(),
             "mlm_accuracy": (out.mlm_predictions == targets).float().mean().item(),
             "tokens": float(batch["attention_mask"].sum())}
    if pair_task:
        stats["nsp_loss"] = out.nsp_loss.item()
        stats["nsp_accuracy"] = (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]
                                 ).float().mean().item()
    return out.loss, stats


@torch.no_grad()
def evaluate_pretraining(model: nn.Module, batches: list[dict[str, torch.Tensor]], pair_task: bool = True,
                         baseline_token: int | None = None) -> dict[str, float]:
    """MLM accuracy and perplexity (and NSP/SOP accuracy) over fixed, pre-masked held-out batches.

    ``baseline_token`` adds the accuracy of always predicting that token (the corpus's most frequent): what the
    model must beat to have learned anything beyond token frequencies.
    """
    was_training = model.training
    model.eval()
    loss_sum = correct = total = pair_correct = pair_total = baseline = 0.0
    device = model_device(model)
    for batch in batches:
        batch = move_batch(batch, device)  # held-out batches are built on the CPU
        labels = batch["labels"]
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=labels,
                    return_logits=False)
        targets = labels[labels != IGNORE_INDEX]
        loss_sum += out.mlm_loss.item() * targets.numel()
        correct += (out.mlm_predictions == targets).sum().item()
        total += targets.numel()
        if baseline_token is not None:
            baseline += (targets == baseline_token).sum().item()
        if pair_task:
            pair_correct += (out.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).sum().item()
            pair_total += labels.shape[0]
    model.train(was_training)
    if total == 0:
        raise ValueError("the evaluation set has no masked positions")
    metrics = {"mlm_accuracy": correct / total, "mlm_loss": loss_sum / total,
               "perplexity": math.exp(min(loss_sum / total, 50.0)), "predictions": total}
    if pair_task:
        metrics["nsp_accuracy"] = pair_correct / pair_total
    if baseline_token is not None:
        metrics["unigram_baseline_accuracy"] = baseline / total
    return metrics
