"""The task and model class of a run: the long-text strategies that need the model (``key_sentences`` ranks with its
embeddings or a sentence encoder, ``hierarchical`` has its own model class) are chosen here; every other run gets
:func:`.tasks.build_task`'s task and ``MODEL_CLASSES``' class."""

from __future__ import annotations

import os

from torch import nn

from . import tasks
from .config import FinetuneConfig
from .data import LabelMap
from .hierarchical import BertHierarchicalForSequenceClassification, HierarchicalTask, is_hierarchical_folder
from .key_sentences import KeySentenceTask, embedding_vectors, encoder_vectors
from .models import MODEL_CLASSES
from .task_base import Task

SEQUENCE_TASKS = ("classification", "multi_label", "regression")


def check_long_text(config: FinetuneConfig) -> None:
    """Refuse a model-backed long-text strategy where it cannot apply, naming why."""
    if config.long_text not in ("key_sentences", "hierarchical"):
        return
    if config.task not in SEQUENCE_TASKS:
        raise ValueError(f"long_text: {config.long_text} cuts texts for {', '.join(SEQUENCE_TASKS)}, not {config.task}")
    if config.long_text == "hierarchical" and config.peft_config() is not None:
        raise ValueError("long_text: hierarchical trains its chunk layer with the encoder; it does not combine with "
                         "peft or train_head_only")


def run_model_class(config: FinetuneConfig) -> type:
    """The class a run builds: the hierarchical reader for ``long_text: hierarchical``, else the task's."""
    check_long_text(config)
    if config.long_text == "hierarchical":
        return BertHierarchicalForSequenceClassification
    return MODEL_CLASSES[config.task]


def folder_class(folder: str | os.PathLike, default: type) -> type:
    """The class that loads a fine-tuned folder: the hierarchical reader where its settings say so."""
    return BertHierarchicalForSequenceClassification if is_hierarchical_folder(folder) else default


def build_task(config: FinetuneConfig, tokenizer, labels: LabelMap, model: nn.Module | None = None) -> Task:
    """The task object of a run; ``key_sentences`` without ``key_sentence_model`` ranks with ``model``'s embeddings."""
    check_long_text(config)
    if config.long_text == "hierarchical":
        return HierarchicalTask(config, tokenizer, labels)
    if config.long_text == "key_sentences":
        if config.key_sentence_model:
            vectors = encoder_vectors(config.key_sentence_model)
        elif model is not None:
            vectors = embedding_vectors(model)
        else:
            raise ValueError("long_text: key_sentences ranks sentences with the model's embeddings: pass the model, "
                             "or set key_sentence_model to a sentence encoder folder")
        return KeySentenceTask(config, tokenizer, labels, vectors)
    return tasks.build_task(config, tokenizer, labels)
