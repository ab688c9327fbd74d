"""Bi-encoder training (SBERT): fine-tune a SentenceEncoder on pairs, scored pairs or labelled pairs with the shared
Trainer.

Data: .jsonl, .csv or .tsv files read as fine-tuning reads them; a row's columns in order are its texts.
``loss: mnrl`` takes (anchor, positive[, hard negative …]) rows and learns from in-batch negatives;
``cosent`` and ``cosine`` take (text, text, score) rows; ``softmax`` takes (premise, hypothesis, label) rows and
trains SBERT's classifier on (u, v, |u − v|) with the encoder (labels are class indices 0 … n−1, or names numbered
in sorted order; ``num_labels`` fixes n, else the training labels show it; the classifier is not saved, as in SBERT).
A dev file is scored during training (MRR@10 of anchor → positive retrieval, Spearman of cosine vs score, or the
classifier's accuracy), and the best model is kept in ``output_dir/best``; the last one is always written to
``output_dir/model``. Both are sentence-transformers folders. No prompt is applied.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..atomic import write_text_atomic
from ..textio import read_numbered_rows
from ..training import Trainer
from ..training.batches import EpochBatches
from ..training.correlation import spearman
from ..training.run_options import EpochTrainingOptions
from ..training.state import check_output_dir
from ..training.threads import cpu_threads
from .batching import pad_batch
from .losses import LOSSES, SoftmaxClassifier, cosent_loss, cosine_similarity_loss, softmax_loss
from .losses import multiple_negatives_ranking_loss as mnrl_loss
from .retrieval import retrieval_metrics
from .sentence_encoder import SentenceEncoder

DATASETS = ("python_docs",)


@dataclass
class EmbeddingTrainConfig(EpochTrainingOptions):
    """What to train on, with which loss, and how (field names follow the fine-tuning config's)."""

    KIND: ClassVar[str] = "bi-encoder training"
    ALIASES: ClassVar[dict[str, str]] = {"lr": "learning_rate", "batch": "batch_size"}

    model: str | None = None  # a sentence-transformers or Hugging Face folder; None: the installed MiniLM
    dataset: str | None = None  # "python_docs": section title ↔ opening prose (the benchmark's training split)
    train_file: str | None = None
    dev_file: str | None = None
    loss: str = "mnrl"
    scale: float = 20.0  # inverse temperature of mnrl and cosent
    num_labels: int | None = None  # loss softmax: how many classes (None: as many as the training labels show)
    classifier_lr_scale: float = 1.0  # loss softmax: the fresh classifier's learning rate over lr (SBERT: 1)
    max_seq_length: int | None = None  # None: the folder's
    limit_train: int | None = None
    limit_eval: int | None = None
    batch_size: int = 32
    # the shared training options (bertkit.training.run_options) with this command's defaults
    epochs: int = 1
    learning_rate: float = 2e-5
    seed: int = 42
    output_dir: str = "out/embeddings"
    overwrite: bool = True  # an earlier run in output_dir is replaced (false: refused)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {self.loss!r}")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if (self.dataset is None) == (self.train_file is None):
            raise ValueError("give the training data as dataset (a named set) or train_file, exactly one of them")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if self.loss == "mnrl" and self.batch_size < 2:
            raise ValueError("loss mnrl learns from the other rows of a batch: batch_size must be at least 2")
        if self.num_labels is not None and (self.loss != "softmax" or not isinstance(self.num_labels, int)
                                            or self.num_labels < 2):
            raise ValueError(f"num_labels is for loss softmax, an integer ≥ 2; got {self.num_labels!r} with loss "
                             f"{self.loss!r}")
        if not self.classifier_lr_scale > 0:
            raise ValueError(f"classifier_lr_scale must be above 0, got {self.classifier_lr_scale!r}")

    @property
    def scored(self) -> bool:
        return LOSSES[self.loss]

    @property
    def labelled(self) -> bool:
        """Whether rows end with a class label (loss softmax)."""
        return self.loss == "softmax"

    @property
    def metric(self) -> str:
        return "accuracy" if self.labelled else "spearman" if self.scored else "mrr@10"


def read_examples(path: str | Path, scored: bool, labelled: bool = False) -> list[tuple[Any, ...]]:
    """Rows of a .csv / .tsv (header first) or .jsonl file as tuples of their columns in order: texts, and a
    float score last when ``scored``, or a label (the column named ``label``, else the last) when ``labelled``;
    every row as wide as the first."""
    rows = []
    for number, row in read_numbered_rows(path):
        where = f"{path} line {number}"
        cells = list(row.values())
        if labelled and "label" in row:  # a named label column may stand anywhere: it becomes the last
            cells = [v for k, v in row.items() if k != "label"] + [row["label"]]
        rows.append(_labelled_row(cells, where) if labelled else _checked_row(cells, scored, where))
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(f"{path} line {number} has {len(rows[-1])} columns, the first row {len(rows[0])}")
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def _checked_row(cells: list[Any], scored: bool, where: str) -> tuple[Any, ...]:
    texts = cells[:-1] if scored else cells
    if scored:
        try:
            score = float(cells[-1])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: the last column must be a score, got {cells[-1]!r}") from None
        if len(texts) != 2:
            raise ValueError(f"{where}: a scored row is (text, text, score), got {len(cells)} columns")
    elif len(texts) < 2:
        raise ValueError(f"{where}: a row needs an anchor and a positive (and optional negatives)")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: every text column must be a non-empty string, got {text!r:.60}")
    return (*texts, score) if scored else tuple(texts)


def _labelled_row(cells: list[Any], where: str) -> tuple[Any, ...]:
    """(premise, hypothesis, label): a row without its label is refused, not read as a pair."""
    if len(cells) < 3 or cells[-1] is None or (isinstance(cells[-1], str) and not cells[-1].strip()):
        raise ValueError(f"{where}: loss softmax needs (premise, hypothesis, label) rows, and this row has no label")
    label = cells[-1]
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise ValueError(f"{where}: a label is a class index or a name, got {label!r}")
    return (*_checked_row(cells[:-1], False, where), label.strip() if isinstance(label, str) else label)


def number_labels(train: list[tuple], dev: list[tuple], num_labels: int | None
                  ) -> tuple[list[tuple], list[tuple], list[str]]:
    """Rows with their label as a class index, and the label names by index: indices 0 … n−1 stay as they are,
    names are numbered in sorted order; dev labels must be among the training ones."""
    labels = {row[-1] for row in train}
    if all(isinstance(x, int) or x.isdigit() for x in labels | {row[-1] for row in dev}):
        index = {x: int(x) for x in labels | {row[-1] for row in dev}}
        count = num_labels or max(index.values()) + 1
        names = [str(i) for i in range(count)]
        if outside := sorted({str(x) for x, i in index.items() if not 0 <= i < count}):
            raise ValueError(f"labels {outside} are outside 0 … {count - 1} (num_labels={count})")
    else:
        names = sorted({str(x) for x in labels})
        if num_labels is not None and num_labels != len(names):
            raise ValueError(f"num_labels={num_labels}, but the training rows have {len(names)} labels: {names}")
        index = {x: names.index(str(x)) for x in labels}
        if unseen := sorted({str(row[-1]) for row in dev} - set(names)):
            raise ValueError(f"dev labels {unseen} never occur in the training rows, whose labels are {names}")
        index |= {row[-1]: names.index(str(row[-1])) for row in dev}
    if len(names) < 2:
        raise ValueError(f"loss softmax needs at least 2 labels; the training rows have only {names}")
    return ([(*r[:-1], index[r[-1]]) for r in train], [(*r[:-1], index[r[-1]]) for r in dev], names)


def load_data(config: EmbeddingTrainConfig) -> tuple[list[tuple], list[tuple]]:
    """(train, dev) rows from the named set or the files."""
    if config.dataset == "python_docs":
        if config.scored or config.labelled:
            raise ValueError("dataset python_docs holds pairs without scores or labels: use loss mnrl")
        from .pairs import python_docs_pairs, split_by_source

        train_all, _test = split_by_source(python_docs_pairs())  # the benchmark's test split stays unseen
        train, dev = split_by_source(train_all, test_percent=15, seed=1)
        train, dev = [(p.query, p.passage) for p in train], [(p.query, p.passage) for p in dev]
    else:
        train = read_examples(config.train_file, config.scored, config.labelled)
        dev = read_examples(config.dev_file, config.scored, config.labelled) if config.dev_file else []
    return train[: config.limit_train or None], dev[: config.limit_eval or None]


class WithClassifier(nn.Module):
    """The encoder and loss softmax's classifier, trained together; only the encoder is saved (as SBERT does)."""

    def __init__(self, encoder: SentenceEncoder, classifier: SoftmaxClassifier):
        super().__init__()
        self.encoder, self.classifier = encoder, classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask)

    def save_pretrained(self, folder: str | Path, tokenizer: Any = None) -> Path:
        return self.encoder.save_pretrained(folder)


def evaluate(encoder: SentenceEncoder, rows: list[tuple], scored: bool, batch_size: int = 64,
             classifier: SoftmaxClassifier | None = None) -> dict[str, float]:
    """The classifier's accuracy on labelled rows (given a classifier), Spearman of cosine vs score (scored rows),
    or anchor → positive retrieval among all dev positives."""
    first = encoder.encode([r[0] for r in rows], batch_size=batch_size, prompt="")
    second = encoder.encode([r[1] for r in rows], batch_size=batch_size, prompt="")
    if classifier is not None:
        with torch.no_grad():
            device = classifier.classifier.weight.device
            logits = classifier(torch.from_numpy(first).to(device), torch.from_numpy(second).to(device))
        return {"accuracy": float((logits.argmax(-1).cpu() == torch.tensor([r[-1] for r in rows])).float().mean())}
    if not scored:
        return retrieval_metrics(first, second)
    cosines = (first * second).sum(1) / np.linalg.norm(first, axis=1) / np.linalg.norm(second, axis=1)
    return {"spearman": spearman(cosines, [r[2] for r in rows])}


def batch_loss(encoder: torch.nn.Module, batch: dict[str, torch.Tensor], loss: str, scale: float) -> torch.Tensor:
    """The configured loss of one collated batch (columns ``input_ids_0``, ``input_ids_1``, …)."""
    columns = sum(1 for key in batch if key.startswith("input_ids_"))
    vectors = [encoder(batch[f"input_ids_{i}"], batch[f"attention_mask_{i}"]) for i in range(columns)]
    if loss == "mnrl":
        return mnrl_loss(*vectors, scale=scale)
    if loss == "cosent":
        return cosent_loss(vectors[0], vectors[1], batch["scores"], scale=scale)
    if loss == "softmax":  # encoder: a WithClassifier
        return softmax_loss(encoder.classifier, vectors[0], vectors[1], batch["labels"])
    return cosine_similarity_loss(vectors[0], vectors[1], batch["scores"])


def train_embeddings(config: EmbeddingTrainConfig) -> dict[str, Any]:
    """Train, save ``output_dir/model`` (and ``best`` with a dev set), write results.json; returns the results."""
    check_output_dir(config.output_dir, False, config.overwrite, resumable=False)
    with cpu_threads(config.threads):
        return _train(config)


def _train(config: EmbeddingTrainConfig) -> dict[str, Any]:
    torch.manual_seed(config.seed)
    train, dev = load_data(config)
    label_names = None
    if config.labelled:
        train, dev, label_names = number_labels(train, dev, config.num_labels)
    encoder = SentenceEncoder.from_pretrained(config.model)
    if config.max_seq_length:
        encoder.max_seq_length = encoder._checked_max_length(config.max_seq_length)
    pad_id = encoder.tokenizer.pad_token_id
    model = WithClassifier(encoder, SoftmaxClassifier(encoder.dimension, len(label_names))) if label_names else encoder

    def collate(rows: list[tuple]) -> dict[str, torch.Tensor]:
        texts = [r[:-1] if config.scored or config.labelled else r for r in rows]
        batch = {}
        for i, column in enumerate(zip(*texts, strict=True)):
            ids, _ = encoder.tokenize(column, prompt="")
            batch[f"input_ids_{i}"], batch[f"attention_mask_{i}"] = pad_batch(ids, pad_id, encoder.device)
        if config.scored:
            batch["scores"] = torch.tensor([r[-1] for r in rows], dtype=torch.float32, device=encoder.device)
        if config.labelled:
            batch["labels"] = torch.tensor([r[-1] for r in rows], dtype=torch.long, device=encoder.device)
        return batch

    # mnrl: a last batch of one row has no negatives, so it is dropped (the other losses keep every row)
    data = EpochBatches(train, config.batch_size, collate, seed=config.seed, drop_last=config.loss == "mnrl")
    args = config.training_arguments(data.steps_per_epoch, config.metric if dev else None,
                                     ("loss", "learning_rate", config.metric, "tokens_per_second"),
                                     **({} if dev else {"eval_steps": 0}),  # no dev set: no evaluations
                                     **({"head_prefixes": ("classifier.",), "head_lr_scale": config.classifier_lr_scale}
                                        if label_names else {}))

    def compute(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        tokens = sum(float(v.sum()) for k, v in batch.items() if k.startswith("attention_mask_"))
        return batch_loss(model, batch, config.loss, config.scale), {"tokens": tokens}

    def evaluate_dev(m: nn.Module) -> dict[str, float]:
        return evaluate(m.encoder, dev, False, classifier=m.classifier) if label_names else evaluate(m, dev,
                                                                                                  config.scored)

    trainer = Trainer(model, args, data, compute, evaluate=evaluate_dev if dev else None,
                      save_best=lambda m, folder: m.save_pretrained(folder))
    started = time.perf_counter()
    outcome = trainer.train()
    seconds = time.perf_counter() - started
    encoder.eval().save_pretrained(Path(config.output_dir) / "model")
    evals = [r for r in outcome.history if r["split"] == "eval"]
    epochs_run = outcome.step / config.steps_per_epoch(data.steps_per_epoch)
    results = {"output_dir": config.output_dir, "loss": config.loss, "steps": outcome.step,
               "epochs_run": round(epochs_run, 4), "train_seconds": round(seconds, 1),
               "metric": config.metric, "best_dev": outcome.best_metric,
               "dev": evals[-1] if evals else None, "sizes": {"train": len(train), "dev": len(dev)},
               "final_loss": next((r["loss"] for r in reversed(outcome.history) if "loss" in r), math.nan),
               **({"labels": label_names} if label_names else {}),
               "config": config.to_dict()}
    write_text_atomic(Path(config.output_dir) / "results.json", json.dumps(results, indent=2) + "\n")
    return results
