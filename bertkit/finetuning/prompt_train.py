"""``method: prompt`` in a fine-tuning run: the MLM model read through a pattern (:mod:`.prompt`) as a classifier
the shared Trainer drives like any task model, its task (examples → cloze inputs, PET's auxiliary MLM masks), and
its folder — the MLM folder as transformers writes it plus ``prompt.json`` — which ``bertkit predict`` reads back.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..checkpoint import LoadingReport, load_weights
from ..encoding.batching import pad_rows
from ..model import AutoModelForMaskedLM
from ..model.heads import IGNORE_INDEX
from ..pretraining.masking import MaskingConfig, mask_instance
from ..tokenization import AutoTokenizer
from . import metrics
from .config import FinetuneConfig
from .data import LabelMap
from .models import TaskOutput, encoder_config
from .prompt import check_pattern, encode_prompt, pet_loss, prompt_scores, read_prompt, save_prompt, verbalizer_ids
from .task_base import Task, inputs_of

MLM_HEAD = ("cls.",)  # bertkit's name of every family's masked-LM head


class PromptModel(nn.Module):
    """An MLM model as a classifier: ``logits`` are the verbaliser words' MLM logits at the mask; the loss PET's."""

    head_prefixes: tuple[str, ...] = ()  # the MLM head is pretrained: one learning rate (unless it starts fresh)

    def __init__(self, mlm: nn.Module, mask_id: int, label_ids: Sequence[int], mlm_weight: float = 0.0):
        super().__init__()
        self.mlm, self.mask_id, self.label_ids, self.mlm_weight = mlm, mask_id, list(label_ids), mlm_weight
        self.config = mlm.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                mlm_input_ids: torch.Tensor | None = None, mlm_labels: torch.Tensor | None = None) -> TaskOutput:
        """Scores (batch, labels) at each row's single mask; with labels, PET's loss (the MLM part when given)."""
        positions = (input_ids == self.mask_id).int().argmax(1)  # encode_prompt leaves exactly one mask a row
        scores = prompt_scores(self.mlm, input_ids, attention_mask, token_type_ids, positions, self.label_ids)
        loss = None
        if labels is not None:
            mlm_loss = None
            if mlm_input_ids is not None:
                mlm_loss = self.mlm(mlm_input_ids, attention_mask, token_type_ids, labels=mlm_labels).loss
            loss = pet_loss(scores, labels, mlm_loss, self.mlm_weight)
        return TaskOutput(loss, scores)

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """The MLM folder (transformers loads it as ``*ForMaskedLM``); ``prompt.json`` is written by the run."""
        return self.mlm.save_pretrained(folder, tokenizer)

    def load_folder(self, folder: str | os.PathLike) -> LoadingReport:
        """Load a checkpoint's MLM weights (what ``--resume`` calls through ``checkpoint.load_weights``)."""
        return load_weights(self.mlm, Path(folder))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> PromptModel:
        """A prompt-tuned folder: the MLM model, its tokenizer's mask and the verbaliser ids of ``prompt.json``."""
        prompt, tokenizer = read_prompt(folder), AutoTokenizer.from_pretrained(folder)
        ids = verbalizer_ids(tokenizer, prompt["pattern"], prompt["verbalizer"], list(prompt["verbalizer"]))
        return cls(AutoModelForMaskedLM.from_pretrained(folder), tokenizer.mask_token_id, ids).eval()


def prompt_labels(config: FinetuneConfig, splits: dict[str, list[dict[str, Any]]]) -> LabelMap:
    """The verbaliser's labels in its order; a label in the data without a verbaliser word is refused."""
    unknown = sorted({e["label"] for examples in splits.values() for e in examples} - set(config.verbalizer))
    if unknown:
        raise ValueError(f"label(s) {unknown[:10]} of the data have no verbalizer word; it maps "
                         f"{sorted(config.verbalizer)}")
    return LabelMap(list(config.verbalizer))


def build_prompt_model(config: FinetuneConfig, folder: Path, tokenizer: Any, labels: LabelMap) -> PromptModel:
    """The folder's MLM model (``init: random``: fresh weights of its shape) under the run's pattern and verbaliser."""
    base = encoder_config(folder)
    if config.max_length > base.max_tokens:
        raise ValueError(f"max_length={config.max_length} is beyond the model's {base.max_tokens} positions")
    fresh: list[str] = []
    if config.init == "random":
        mlm = AutoModelForMaskedLM.from_config(base)
    else:
        mlm = AutoModelForMaskedLM.from_pretrained(folder)
        fresh = [name for name in mlm.loading_report.missing if name.startswith(MLM_HEAD)]
        if fresh:  # a sentence-embedding folder (MiniLM): its encoder learned English, its MLM head starts random
            print(f"method: prompt: {folder} has no trained masked-LM head ({len(fresh)} tensors start fresh); "
                  "zero-shot scores are a random head's until it is trained", file=sys.stderr)
    ids = verbalizer_ids(tokenizer, config.pattern, config.verbalizer, labels.labels)
    model = PromptModel(mlm, tokenizer.mask_token_id, ids, config.prompt_mlm_weight)
    if config.init == "random" or fresh:  # a fresh head learns head_lr_scale times faster, as a classifier's does
        model.head_prefixes = tuple(f"mlm.{prefix}" for prefix in MLM_HEAD)
    return model.train()


def save_prompt_model(model: PromptModel, folder: Path, tokenizer: Any, config: FinetuneConfig,
                      labels: LabelMap) -> None:
    """The MLM folder and ``prompt.json`` (pattern, verbaliser in label order, max_length, columns)."""
    model.save_pretrained(folder, tokenizer)
    save_prompt(folder, config.pattern, config.verbalizer, labels.labels,
                {"max_length": config.max_length, "columns": config.columns})


class PromptTask(Task):
    """Classification through a pattern: features are the filled cloze inputs; metrics are classification's."""

    def __init__(self, config: FinetuneConfig, tokenizer: Any, labels: LabelMap):
        super().__init__(config, tokenizer, labels)
        self.pattern = check_pattern(config.pattern)
        self.pairs = "{text_b}" in self.pattern
        self.rng = random.Random(config.seed)  # the auxiliary MLM's masks, drawn anew each batch (dynamic)
        self.special_ids = set(tokenizer.all_special_ids)

    def features(self, examples: Sequence[dict[str, Any]], training: bool = False) -> list[dict[str, Any]]:
        """One cloze input per example, with its label id where the example has a label."""
        out = []
        for i, example in enumerate(examples):
            if self.pairs != ("text_pair" in example):
                raise ValueError(f"example {i + 1} {'lacks' if self.pairs else 'has'} a text_pair but the pattern "
                                 f"{self.pattern!r} {'holds' if self.pairs else 'has no'} {{text_b}}")
            ids, _ = encode_prompt(self.tokenizer, self.pattern, example["text"], example.get("text_pair"),
                                   self.config.max_length)
            label = self.labels.label2id[example["label"]] if "label" in example else None
            out.append({"input_ids": ids, "token_type_ids": [0] * len(ids), "label": label})
        return out

    def mlm_inputs(self, features: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked copies of the inputs and their MLM labels (15 %, 80 / 10 / 10; never a special token or the mask
        the pattern put there)."""
        masked, targets = [], []
        for feature in features:
            ids = feature["input_ids"]
            maskable = [i not in self.special_ids for i in ids]
            out = mask_instance(ids, [True] * len(ids), maskable, self.tokenizer.mask_token_id,
                                self.tokenizer.vocab_size, MaskingConfig(), self.rng)
            masked.append(out.input_ids)
            targets.append(out.labels)
        return pad_rows(masked, self.pad_id), pad_rows(targets, IGNORE_INDEX)

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = inputs_of(features, self.pad_id)
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=torch.long)
        if self.config.prompt_mlm_weight:
            batch["mlm_input_ids"], batch["mlm_labels"] = self.mlm_inputs(features)
        return batch

    def predict(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> np.ndarray:
        """(examples, labels) verbaliser scores."""
        return np.stack(self.run(model, self.features(examples)))

    def evaluate(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> dict[str, float]:
        gold = [self.labels.label2id[e["label"]] for e in examples]
        return metrics.classification_metrics(gold, self.predict(model, examples).argmax(1), len(self.labels))
