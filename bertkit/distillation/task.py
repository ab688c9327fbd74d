"""Task distillation: a fine-tuned classifier (the teacher) → a student with fewer layers or a narrower width,
trained on the teacher's data set with ``α·KL(T) + β·cross-entropy`` (+ TinyBERT's hidden / attention losses).

The student is kept at its best dev accuracy (``output_dir/best``, the Hugging Face layout of the teacher's
class); at the end teacher and student are scored on the test split and timed on it in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..encoding.pooling import mean_pool
from ..finetuning.config import FinetuneConfig
from ..finetuning.data import LabelMap
from ..finetuning.models import BertForSequenceClassification, TaskConfig
from ..finetuning.tasks import build_task
from ..finetuning.train import load_splits, seed_everything
from ..model.heads import IGNORE_INDEX
from ..tokenization import AutoTokenizer
from ..training import Trainer
from ..training.batches import EpochBatches
from .augment import augmented_texts, unlabeled
from .config import DistillConfig
from .losses import DistillationLoss
from .speed import fastest_rounds
from .student import check_same_vocabulary, copied_student, narrow_student, search_layers


class Distiller(nn.Module):
    """What the Trainer optimises: the student, and the loss's own parameters (W_h when the widths differ)."""

    def __init__(self, student: nn.Module, loss: DistillationLoss):
        super().__init__()
        self.student, self.loss = student, loss


def classifier_outputs(model: BertForSequenceClassification, batch: dict[str, torch.Tensor], hidden_states: bool,
                       attentions: bool) -> dict[str, Any]:
    """Logits of a sequence classifier, with the encoder's hidden states and attention maps when asked."""
    mask = batch["attention_mask"]
    out = model.base_model(batch["input_ids"], mask, batch.get("token_type_ids"),
                           output_hidden_states=hidden_states, output_attentions=attentions)
    pooling = model.config.pooling  # the same sentence vector as BertForSequenceClassification.sentence_vector
    vector = (out.pooler_output if pooling == "pooled" else out.last_hidden_state[:, 0] if pooling == "cls"
              else mean_pool(out.last_hidden_state, mask))
    return {"logits": model.classifier(model.dropout(vector)), "hidden_states": out.hidden_states,
            "attentions": out.attentions}


def build_student(teacher: nn.Module, config: DistillConfig, layers: list[int] | None = None) -> nn.Module:
    """Copied teacher layers (``layers``, else ``student_layers``, else every other one;
    ``student_intermediate_size``: their feed-forward slimmed), a narrower random student, or the encoder of
    ``student_model`` (same vocabulary) under a fresh head with the teacher's labels."""
    if config.student_model is not None:
        check_same_vocabulary(config.teacher, config.student_model)
        base = BertConfig.from_json_file(Path(config.student_model) / "config.json")
        labels = {k: getattr(teacher.config, k) for k in ("id2label", "label2id", "problem_type", "pooling",
                                                          "finetuning")}
        return BertForSequenceClassification.from_pretrained(config.student_model,
                                                             config=TaskConfig.over(base, **labels)).train()
    if config.student_hidden_size is not None:
        return narrow_student(teacher, config.student_num_layers, config.student_hidden_size, config.student_heads,
                              config.student_intermediate_size, seed=config.seed)
    return copied_student(teacher, config.student_num_layers, layers or config.student_layers,
                          config.student_intermediate_size)


def build_loss(student: nn.Module, teacher: nn.Module, config: DistillConfig) -> DistillationLoss:
    """The weighted loss of the config, for this pair of shapes."""
    return DistillationLoss(student.config.hidden_size, teacher.config.hidden_size,
                            student.config.num_hidden_layers, teacher.config.num_hidden_layers,
                            alpha=config.alpha, beta=config.beta, temperature=config.temperature,
                            hidden_weight=config.hidden_weight, cosine_weight=config.cosine_weight,
                            attention_weight=config.attention_weight, layer_map=config.layer_map)


def step_function(teacher: nn.Module, loss: DistillationLoss):
    """The Trainer's step: teacher outputs without gradients, the student's with, the weighted loss."""
    def compute(distiller: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        states, maps = loss.needs_hidden_states, loss.needs_attentions
        with torch.no_grad():
            target = classifier_outputs(teacher, batch, states, maps)
        student = classifier_outputs(distiller.student, batch, states, maps)
        known = batch["labels"] != IGNORE_INDEX  # augmented sentences have no gold label: soft targets only
        task_loss = (F.cross_entropy(student["logits"][known], batch["labels"][known]) if known.any()
                     else student["logits"].sum() * 0.0)
        total, parts = distiller.loss(student, target, task_loss, batch["attention_mask"])
        return total, {"tokens": float(batch["attention_mask"].sum()), **parts}
    return compute


def load_teacher(folder: Path) -> BertForSequenceClassification:
    """A fine-tuned sequence classifier, frozen, in eval mode."""
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no fine-tuned model in {folder} (expected bertkit finetune's best/ folder)")
    config = TaskConfig.from_json_file(folder / "config.json")
    if not config.id2label or config.finetuning.task != "classification":
        raise ValueError(f"{folder} is not a fine-tuned classifier (no labels, or task "
                         f"{config.finetuning.task!r}): task distillation matches class probabilities")
    if config.finetuning.long_text in ("key_sentences", "hierarchical"):
        raise ValueError(f"{folder} was fine-tuned with long_text: {config.finetuning.long_text}; task distillation "
                         "feeds teacher and student the same head-cut texts: distil a teacher fine-tuned with "
                         "long_text head, tail, head+tail or sliding")
    return BertForSequenceClassification.from_pretrained(folder, config=config).eval().requires_grad_(False)


def teacher_settings(teacher: BertForSequenceClassification, config: DistillConfig) -> FinetuneConfig:
    """The data and input settings the teacher was fine-tuned with (its config.json's ``finetuning``)."""
    saved = teacher.config.finetuning
    files = {k: getattr(config, k) for k in ("train_file", "dev_file", "test_file")}
    return FinetuneConfig(task="classification", dataset=None if config.train_file else config.dataset, **files,
                          limit_train=config.limit_train, columns=saved.columns,
                          max_length=config.max_length or saved.max_length,
                          eval_batch_size=config.eval_batch_size, pooling=teacher.config.pooling)


def training_features(task: Any, train: list[dict], config: DistillConfig, mask_token: str) -> list[dict]:
    """The labelled training features, then ``augment_copies`` augmented sentences per example without a label."""
    features = task.features(train, training=True)
    if not config.augment_copies:
        return features
    if any("text_pair" in example for example in train):
        raise ValueError("augment_copies augments single sentences; this data set holds sentence pairs")
    texts = augmented_texts([example["text"] for example in train], config.augment_copies, mask_token, config.seed)
    print(f"augmentation: {len(texts):,} new sentences beside {len(train):,} labelled ones", file=sys.stderr)
    return features + [dict(feature, label=IGNORE_INDEX) for feature in task.features(unlabeled(texts), True)]


def distill_task(config: DistillConfig) -> dict[str, Any]:
    """Train the student, keep its best dev model, and report teacher and student side by side on test."""
    return config.guarded_run(_distill_task)


def _distill_task(config: DistillConfig) -> dict[str, Any]:
    seed_everything(config.seed)
    teacher_dir = Path(config.teacher)
    teacher = load_teacher(teacher_dir)
    settings = teacher_settings(teacher, config)
    splits = load_splits(settings)
    labels = LabelMap([teacher.config.id2label[i] for i in range(len(teacher.config.id2label))])
    for name in ("train", "dev", "test"):
        labels.check(splits[name], "classification", name)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    task = build_task(settings, tokenizer, labels)
    layers = config.student_layers
    if config.layer_search:  # the copied layers whose student, head included, has the best dev accuracy as copied
        layers = search_layers(teacher, config.student_num_layers,
                               lambda m: task.evaluate(m.eval(), splits["dev"])["accuracy"])
    student = build_student(teacher, config, layers)
    loss = build_loss(student, teacher, config)
    distiller = Distiller(student, loss).train()
    features = training_features(task, splits["train"], config, tokenizer.mask_token)
    data = EpochBatches(features, config.batch_size, task.collate, seed=config.seed, bucket_size=50,
                        length=task.length)
    steps_per_epoch = config.steps_per_epoch(data.steps_per_epoch)
    args = config.training_arguments(data.steps_per_epoch, "accuracy",
                                     ("loss", "loss_kl", "loss_task", "loss_hidden", "loss_attention", "accuracy"))

    def evaluate(m: nn.Module) -> dict[str, float]:
        return task.evaluate(m.student, splits["dev"])

    def save_best(m: nn.Module, folder: Path) -> None:
        m.student.save_pretrained(folder, tokenizer=tokenizer)

    outcome = Trainer(distiller, args, data, step_function(teacher, loss), evaluate=evaluate, tokenizer=tokenizer,
                      save_best=save_best).train()
    best = type(teacher).from_pretrained(Path(config.output_dir) / "best")
    return compare(config, teacher, best, task, splits["test"], outcome.step, steps_per_epoch, len(features), layers)


def compare(config: DistillConfig, teacher: nn.Module, student: nn.Module, task: Any, test: list[dict],
            steps: int, steps_per_epoch: int, train_features: int,
            layers: list[int] | None = None) -> dict[str, Any]:
    """Test scores and encode time of teacher and student in one run; written to ``output_dir/results.json``."""
    scores = {"teacher": task.evaluate(teacher, test), "student": task.evaluate(student, test)}
    seconds = fastest_rounds({"teacher": lambda: task.predict(teacher, test),
                              "student": lambda: task.predict(student, test)}, config.speed_rounds)
    result = {
        "output_dir": config.output_dir, "teacher_dir": config.teacher, "test_examples": len(test),
        "steps": steps, "epochs_run": round(steps / steps_per_epoch, 3), "train_features": train_features,
        "student_layers": layers,
        "teacher": {"accuracy": scores["teacher"]["accuracy"], "layers": teacher.config.num_hidden_layers,
                    "hidden_size": teacher.config.hidden_size, "parameters": teacher.num_parameters(),
                    "test_seconds": seconds["teacher"], "examples_per_second": len(test) / seconds["teacher"]},
        "student": {"accuracy": scores["student"]["accuracy"], "layers": student.config.num_hidden_layers,
                    "hidden_size": student.config.hidden_size, "parameters": student.num_parameters(),
                    "test_seconds": seconds["student"], "examples_per_second": len(test) / seconds["student"]},
        "accuracy_kept": scores["student"]["accuracy"] / scores["teacher"]["accuracy"],
    }
    return config.save_results(result, seconds, f"teacher accuracy {result['teacher']['accuracy']:.4f}, student "
                               f"{result['student']['accuracy']:.4f} ({100 * result['accuracy_kept']:.1f} % kept)")
