"""Use a fine-tuned folder: ``SequenceClassifier.from_pretrained(dir).predict(texts)``, ``TokenClassifier`` for NER,
and :func:`load_predictor`, which picks the right one from config.json (what ``bertkit predict`` uses)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..peft.folders import is_adapter_folder
from ..tokenization import AutoTokenizer, BertTokenizer
from ..training.device import resolve_device
from .adapter_folders import base_folder, load_task_adapter
from .config import FinetuneConfig
from .data import LabelMap
from .long_tasks import build_task, folder_class
from .models import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification, TaskConfig
from .ner import entities
from .prompt import PROMPT_FILE, read_prompt
from .prompt_train import PromptModel, PromptTask

# the task of a folder, from its class name (any encoder: BertFor…, RobertaFor…, AlbertFor…)
TASK_SUFFIXES = {"ForSequenceClassification": "sequence", "ForTokenClassification": "token",
                 "ForQuestionAnswering": "qa"}


def _settings(config: TaskConfig, batch_size: int) -> FinetuneConfig:
    """The input preparation the model was trained with (max_length, long-text strategy, ...)."""
    return FinetuneConfig(**config.finetuning.run_options(), eval_batch_size=batch_size, progress=False)


class Predictor:
    """A fine-tuned model, its tokenizer and its input settings."""

    model_class: type = BertForSequenceClassification

    def __init__(self, model: torch.nn.Module, tokenizer: BertTokenizer, batch_size: int = 64,
                 device: str | torch.device | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        if device is not None:  # auto | cpu | cuda | cuda:N; None: where the model already is
            self.model.to(resolve_device(device))
        self.settings = _settings(model.config, batch_size)
        self.labels = LabelMap([model.config.id2label[i] for i in sorted(model.config.id2label)])
        self.task = build_task(self.settings, tokenizer, self.labels, self.model)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, batch_size: int = 64, device: str | torch.device | None = None):
        """Load a folder written by ``bertkit finetune`` (its ``best/``) or ``save_pretrained``, onto ``device``."""
        folder = Path(folder)
        if is_adapter_folder(folder):  # an adapter: its base model (adapter_config.json) with the adapter on it
            model = load_task_adapter(folder)
            tokens = folder if (folder / "vocab.txt").is_file() or (folder / "tokenizer.json").is_file() else None
            return cls(model, AutoTokenizer.from_pretrained(tokens or base_folder(folder, None)), batch_size, device)
        model = folder_class(folder, cls.model_class).from_pretrained(folder)  # long_text: hierarchical's own
        return cls(model, AutoTokenizer.from_pretrained(folder), batch_size, device)


class SequenceClassifier(Predictor):
    """Texts (and optional pairs) → a label with probabilities, several labels (multi-label) or a score."""

    def predict_logits(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> np.ndarray:
        """Raw per-text logits (long texts: windows aggregated as trained)."""
        examples = [{"text": t} if text_pairs is None else {"text": t, "text_pair": p}
                    for t, p in zip(texts, text_pairs or texts, strict=True)]
        return self.task.predict(self.model, examples)

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One dict per text: ``label`` + ``probabilities``; ``labels`` for multi-label; ``score`` for regression."""
        logits = self.predict_logits(texts, text_pairs)
        task = self.settings.task
        if task == "regression":
            return [{"score": float(row[0])} for row in logits]
        if task == "multi_label":
            probabilities = 1 / (1 + np.exp(-logits))
            return [{"labels": [self.labels.labels[i] for i in np.flatnonzero(row > 0.5)],
                     "probabilities": dict(zip(self.labels.labels, map(float, row), strict=True))}
                    for row in probabilities]
        shifted = np.exp(logits - logits.max(1, keepdims=True))
        probabilities = shifted / shifted.sum(1, keepdims=True)
        return [{"label": self.labels.labels[int(row.argmax())],
                 "probabilities": dict(zip(self.labels.labels, map(float, row), strict=True))}
                for row in probabilities]


class PromptClassifier(SequenceClassifier):
    """A prompt-tuned MLM folder (``prompt.json`` beside it): the label whose verbaliser word scores highest at the
    pattern's mask, with the softmax over those scores as probabilities."""

    def __init__(self, model: PromptModel, tokenizer, prompt: dict[str, Any], batch_size: int = 64,
                 device: str | torch.device | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        if device is not None:
            self.model.to(resolve_device(device))
        self.settings = FinetuneConfig(method="prompt", pattern=prompt["pattern"], verbalizer=prompt["verbalizer"],
                                       max_length=prompt["max_length"], columns=prompt.get("columns") or {},
                                       eval_batch_size=batch_size, progress=False)
        self.labels = LabelMap(list(prompt["verbalizer"]))
        self.task = PromptTask(self.settings, tokenizer, self.labels)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, batch_size: int = 64, device: str | torch.device | None = None):
        """Load a folder written by ``bertkit finetune method=prompt`` (its ``best/``)."""
        return cls(PromptModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder), read_prompt(folder),
                   batch_size, device)


class TokenClassifier(Predictor):
    """Texts → words with tags and entity spans (words: whitespace-split, or characters for Chinese NER)."""

    model_class = BertForTokenClassification

    def words(self, text: str) -> list[str]:
        chars = self.model.config.finetuning.words == "chars"
        return [c for c in text if not c.isspace()] if chars else text.split()

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per text: ``words``, ``tags`` and ``entities`` (type, word span, text)."""
        joiner = "" if self.model.config.finetuning.words == "chars" else " "
        examples = [{"tokens": self.words(t) or ["[UNK]"]} for t in texts]
        tags = self.task.predict(self.model, examples)
        return [{"words": e["tokens"], "tags": t, "entities": entities(e["tokens"], t, joiner)}
                for e, t in zip(examples, tags, strict=True)]


class QuestionAnswerer(Predictor):
    """(question, context) pairs → the best answer span, with its character offsets in the context."""

    model_class = BertForQuestionAnswering

    def predict(self, questions: Sequence[str], contexts: Sequence[str]) -> list[dict[str, Any]]:
        examples = [{"question": q, "context": c} for q, c in zip(questions, contexts, strict=True)]
        return self.task.predict(self.model, examples)


def task_kind(architectures: Sequence[str]) -> str | None:
    """``sequence``, ``token`` or ``qa`` from config.json's ``architectures`` (any encoder, and the
    ``…BertkitForSequenceClassification`` of a folder with its own pooling or head), or None."""
    return next((kind for a in architectures for suffix, kind in TASK_SUFFIXES.items() if a.endswith(suffix)), None)


def load_predictor(folder: str | os.PathLike, batch_size: int = 64, device: str | torch.device | None = None
                   ) -> Predictor:
    """The predictor for whatever task the folder's config.json names (its ``architectures``)."""
    if (Path(folder) / PROMPT_FILE).is_file():  # method: prompt's MLM folder: its pattern and verbaliser classify
        return PromptClassifier.from_pretrained(folder, batch_size, device)
    path = Path(folder) / ("task_config.json" if is_adapter_folder(folder) else "config.json")
    if not path.is_file():
        raise FileNotFoundError(f"no fine-tuned model in {folder}: {path.name} is missing")
    architectures = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    kind = task_kind(architectures)
    if kind is None:
        raise ValueError(f"{folder} is not a fine-tuned model (architectures {architectures}); fine-tune one with "
                         "bertkit finetune")
    predictor = {"sequence": SequenceClassifier, "token": TokenClassifier, "qa": QuestionAnswerer}[kind]
    return predictor.from_pretrained(folder, batch_size, device)
