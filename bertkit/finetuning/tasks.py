"""What each task adds to the shared loop: examples → features → padded batches, the step, and evaluation.

A task object has ``features(examples, training)``, ``collate(features)``, ``compute(model, batch)`` (the
Trainer's step function), ``predict(model, examples)`` and ``evaluate(model, examples)`` (dev/test metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..encoding.batching import pad_rows
from ..model.heads import IGNORE_INDEX
from . import long_text, metrics, ner
from .config import FinetuneConfig
from .data import LabelMap
from .qa import QATask
from .task_base import Task, inputs_of


class SequenceTask(Task):
    """Classification (single or pair), multi-label and regression over the sentence vector."""

    def __init__(self, config: FinetuneConfig, tokenizer, labels: LabelMap):
        super().__init__(config, tokenizer, labels)
        self.budget = config.max_length - 2
        long_text.check_strategy(config.long_text, self.budget, config.head_tokens, config.window_stride,
                                 config.window_aggregation)

    def target(self, example: dict[str, Any]) -> Any:
        task = self.config.task
        if task == "regression":
            return float(example["score"])
        if task == "multi_label":
            hot = [0.0] * len(self.labels)
            for label in example["label"]:
                hot[self.labels.label2id[label]] = 1.0
            return hot
        return self.labels.label2id[example["label"]]

    def windows(self, example: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
        """(input_ids, token_type_ids) of each window of an example: pairs are truncated longest-first."""
        tok, config = self.tokenizer, self.config
        if "text_pair" in example:
            enc = tok(example["text"], example["text_pair"], truncation=True, max_length=config.max_length)
            return [(enc["input_ids"], enc["token_type_ids"])]
        ids = tok.text_to_ids(example["text"])
        runs = long_text.windows(ids, config.long_text, self.budget, config.head_tokens, config.window_stride)
        return [([tok.cls_token_id, *run, tok.sep_token_id], [0] * (len(run) + 2)) for run in runs]

    def features(self, examples: Sequence[dict[str, Any]], training: bool = False) -> list[dict[str, Any]]:
        """One feature per window (one per example unless ``long_text: sliding``)."""
        out = []
        for doc, example in enumerate(examples):
            label = self.target(example) if ("label" in example or "score" in example) else None
            for ids, types in self.windows(example):
                out.append({"input_ids": ids, "token_type_ids": types, "doc": doc, "label": label})
        return out

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = inputs_of(features, self.pad_id, self.pad_multiple)
        dtype = torch.long if self.config.task == "classification" else torch.float
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=dtype)
        return batch

    def predict(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> np.ndarray:
        """Per-example logits (windows aggregated by mean or max)."""
        features = self.features(examples)
        logits = np.stack(self.run(model, features))
        owners = np.array([f["doc"] for f in features])
        return long_text.aggregate(logits, owners, len(examples), self.config.window_aggregation)

    def evaluate(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> dict[str, float]:
        logits = self.predict(model, examples)
        task = self.config.task
        if task == "regression":
            return metrics.regression_metrics([e["score"] for e in examples], logits[:, 0])
        if task == "multi_label":
            gold = np.array([self.target(e) for e in examples]) > 0.5
            return metrics.multi_label_metrics(gold, logits > 0)
        gold = [self.target(e) for e in examples]
        return metrics.classification_metrics(gold, logits.argmax(1), len(self.labels))


class TokenTask(Task):
    """Token classification (NER): a tag per word, read from its first WordPiece."""

    def tag_ids(self, example: dict[str, Any]) -> list[int]:
        return [self.labels.label2id[t] for t in example["tags"]]

    def features(self, examples: Sequence[dict[str, Any]], training: bool = False) -> list[dict[str, Any]]:
        """One feature per run of whole words that fits ``max_length`` (long sentences split)."""
        out = []
        for doc, example in enumerate(examples):
            tags = self.tag_ids(example) if "tags" in example else None
            for chunk in ner.chunk_words(self.tokenizer, example["tokens"], self.config.max_length):
                labels = ner.first_piece_labels(chunk.word_ids, tags) if tags else None
                out.append({"input_ids": chunk.input_ids, "token_type_ids": [0] * len(chunk.input_ids),
                            "word_ids": chunk.word_ids, "doc": doc, "labels": labels})
        return out

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = inputs_of(features, self.pad_id, self.pad_multiple)
        batch["labels"] = pad_rows([f["labels"] for f in features], IGNORE_INDEX, self.pad_multiple)
        return batch

    def unpack(self, out: Any, row: int, length: int) -> Any:
        return out.logits[row, :length].argmax(-1).cpu().numpy()

    def predict(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> list[list[str]]:
        """Predicted BIO tags, one per word."""
        features = self.features(examples)
        tags = [["O"] * len(e["tokens"]) for e in examples]
        for feature, pieces in zip(features, self.run(model, features), strict=True):
            for word, label in ner.words_from_pieces(feature["word_ids"], pieces).items():
                tags[feature["doc"]][word] = self.labels.labels[label]
        return tags

    def evaluate(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> dict[str, float]:
        return metrics.entity_metrics([e["tags"] for e in examples], self.predict(model, examples))


def build_task(config: FinetuneConfig, tokenizer, labels: LabelMap) -> Task:
    """The task object for ``config.task``."""
    if config.task == "token_classification":
        return TokenTask(config, tokenizer, labels)
    if config.task == "question_answering":
        return QATask(config, tokenizer, labels)
    return SequenceTask(config, tokenizer, labels)
