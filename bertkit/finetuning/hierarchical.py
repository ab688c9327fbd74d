"""``long_text: hierarchical``: a document read as its windows, then the windows read together.

Each window of ``max_length - 2`` tokens (every ``window_stride``, none: back to back; at most ``max_chunks``, spread
over the document) goes through the encoder to its sentence vector (the run's pooling: BERT's pooler on [CLS] by
default); the vectors plus learned chunk positions go through one transformer layer (bertkit's block, the
encoder's width and heads); their masked mean is the document's vector, and the classifier reads it. Everything
trains end to end, one loss per document. A saved folder records ``long_text: hierarchical`` and ``max_chunks``
in config.json's ``finetuning`` object, so predict cuts documents and loads this class the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import BertConfig
from ..encoding.precision import autocast
from ..model.block import Layer
from ..model.encoder import additive_padding_mask
from ..model.pretrained import Pretrained
from ..training.device import model_device, move_batch
from . import long_text
from .models import BertForSequenceClassification, TaskConfig, TaskOutput
from .task_base import inputs_of
from .tasks import SequenceTask


def reader_config(config: BertConfig) -> BertConfig:
    """The chunk layer's shape: one post-LN layer of the encoder's width, heads and feed-forward size."""
    return BertConfig(hidden_size=config.hidden_size, num_attention_heads=config.num_attention_heads,
                      intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
                      hidden_dropout_prob=config.hidden_dropout_prob,
                      attention_probs_dropout_prob=config.attention_probs_dropout_prob,
                      layer_norm_eps=config.layer_norm_eps, num_hidden_layers=1)


class ChunkReader(nn.Module):
    """Chunk vectors + learned chunk positions → one transformer layer → the masked mean over chunks."""

    def __init__(self, config: BertConfig, max_chunks: int):
        super().__init__()
        self.positions = nn.Embedding(max_chunks, config.hidden_size)
        self.layer = Layer(reader_config(config))

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(documents, chunks, width) and a 0/1 (documents, chunks) mask → (documents, width)."""
        if vectors.shape[1] > self.positions.num_embeddings:
            raise ValueError(f"a document of {vectors.shape[1]} chunks; the reader has {self.positions.num_embeddings} "
                             "chunk positions (max_chunks)")
        hidden, _ = self.layer(vectors + self.positions.weight[:vectors.shape[1]],
                               additive_padding_mask(mask, vectors.dtype))
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)


def grouped(vectors: torch.Tensor, owner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Window vectors (windows, width), each document's windows consecutive → (documents, chunks, width), mask."""
    if len(owner) > 1 and bool((owner[1:] < owner[:-1]).any()):
        raise ValueError("chunk_owner must list each document's windows together, documents in order (0, 0, 1, …)")
    counts = torch.bincount(owner)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(owner), device=owner.device) - starts[owner]
    padded = vectors.new_zeros(len(counts), int(counts.max()), vectors.shape[-1])
    mask = torch.zeros(padded.shape[:2], dtype=torch.long, device=vectors.device)
    padded[owner, slot] = vectors
    mask[owner, slot] = 1
    return padded, mask


class BertHierarchicalForSequenceClassification(BertForSequenceClassification):
    """Window vectors → ``chunk_reader`` → dropout → classifier; ``chunk_owner[i]`` is window ``i``'s document."""

    def __init__(self, config: TaskConfig):
        super().__init__(config)
        if config.model_type == "xlnet":
            raise ValueError("long_text: hierarchical reads windows of BERT-family encoders; XLNet reads long "
                             "texts with its memory instead")
        self.chunk_reader = ChunkReader(config, config.finetuning.max_chunks)
        self.head_prefixes = (*self.head_prefixes, "chunk_reader.")  # new weights learn at the head's rate
        self.init_weights()  # from_pretrained overwrites the encoder; the reader and the head start fresh

    def save_pretrained(self, folder: str | os.PathLike, tokenizer: Any = None) -> Path:
        """The Hugging Face layout; no transformers class reads the chunk layer, so no remote code is shipped."""
        return Pretrained.save_pretrained(self, folder, tokenizer)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                chunk_owner: torch.Tensor | None = None) -> TaskOutput:
        """Logits (documents, num_labels); ``chunk_owner`` None: every window is a document of its own."""
        owner = torch.arange(len(input_ids), device=input_ids.device) if chunk_owner is None else chunk_owner
        vectors, mask = grouped(self.sentence_vector(input_ids, attention_mask, token_type_ids), owner)
        logits = self.classifier(self.dropout(self.chunk_reader(vectors, mask)))
        return self.task_output(logits, labels)

    def task_output(self, logits: torch.Tensor, labels: torch.Tensor | None) -> TaskOutput:
        """The parent's loss of the config's problem type, on document logits."""
        if labels is None:
            return TaskOutput(None, logits)
        kind = self.config.problem_type or "single_label_classification"
        if kind == "regression":
            return TaskOutput(F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype)), logits)
        if kind == "multi_label_classification":
            return TaskOutput(F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)), logits)
        return TaskOutput(F.cross_entropy(logits, labels), logits)


def is_hierarchical_folder(folder: str | os.PathLike) -> bool:
    """Whether a fine-tuned folder's config.json says its long texts were read hierarchically."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    settings = json.loads(path.read_text(encoding="utf-8")).get("finetuning") or {}
    return isinstance(settings, dict) and settings.get("long_text") == "hierarchical"


class HierarchicalTask(SequenceTask):
    """Sequence tasks whose examples are documents of windows: one feature, one label, one loss per document."""

    def doc_windows(self, example: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
        """(input_ids, token_type_ids) of each window of a document; a pair is one window, cut longest-first."""
        tok, config = self.tokenizer, self.config
        if "text_pair" in example:
            enc = tok(example["text"], example["text_pair"], truncation=True, max_length=config.max_length)
            return [(enc["input_ids"], enc["token_type_ids"])]
        runs = long_text.chunk_runs(tok.text_to_ids(example["text"]), self.budget, config.window_stride,
                                    config.max_chunks)
        return [([tok.cls_token_id, *run, tok.sep_token_id], [0] * (len(run) + 2)) for run in runs]

    def features(self, examples: Sequence[dict[str, Any]], training: bool = False) -> list[dict[str, Any]]:
        out = []
        for doc, example in enumerate(examples):
            label = self.target(example) if ("label" in example or "score" in example) else None
            out.append({"windows": self.doc_windows(example), "doc": doc, "label": label})
        return out

    def length(self, feature: dict[str, Any]) -> int:
        return sum(len(ids) for ids, _ in feature["windows"])

    def inputs(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """The windows of all the features' documents as one padded batch, with each window's document."""
        flat = [{"input_ids": ids, "token_type_ids": types} for f in features for ids, types in f["windows"]]
        batch = inputs_of(flat, self.pad_id, self.pad_multiple)
        batch["chunk_owner"] = torch.tensor([d for d, f in enumerate(features) for _ in f["windows"]])
        return batch

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.inputs(features)
        dtype = torch.long if self.config.task == "classification" else torch.float
        batch["labels"] = torch.tensor([f["label"] for f in features], dtype=dtype)
        return batch

    def predict(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> np.ndarray:
        """Per-document logits, documents batched up to ``eval_batch_size`` windows."""
        features = self.features(examples)
        was_training, device = model.training, model_device(model)
        model.eval()
        rows = []
        with torch.no_grad():
            for group in document_groups([len(f["windows"]) for f in features], self.config.eval_batch_size):
                with autocast(model):
                    out = model(**move_batch(self.inputs([features[i] for i in group]), device))
                rows.append(out.logits.float().cpu().numpy())
        model.train(was_training)
        return np.concatenate(rows).astype(np.float64)


def document_groups(window_counts: Sequence[int], max_windows: int) -> list[list[int]]:
    """Consecutive documents grouped so that a group holds at most ``max_windows`` windows (or one document)."""
    groups: list[list[int]] = [[]]
    used = 0
    for i, count in enumerate(window_counts):
        if groups[-1] and used + count > max_windows:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += count
    return [g for g in groups if g]
