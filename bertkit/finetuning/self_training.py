"""Self-training with a noisy student (Xie et al. 2020, "Self-training with Noisy Student"; for BERT, Du et al. 2021,
"Self-training Improves Pre-training for Natural Language Understanding"): labels are few, texts are many.

Round 0 is the usual fine-tuning on the labelled rows: the first teacher. Each round after it:

1. the teacher gives class probabilities for every text of ``unlabeled_file``; the rows whose top probability is
   ≥ ``confidence_threshold`` are kept (the pseudo-labelled rows), then balanced to the labelled rows' class
   shares (Noisy Student's balancing: a class the teacher favours keeps its most confident rows, a class it
   neglects repeats its rows, each repeat with its own noise) — a teacher that leans to one class would
   otherwise teach a student that leans further;
2. a student — the pretrained model again, or ``student_layers`` of its layers (distillation/student.py), with a
   fresh head and dropout on — learns from the labelled rows (cross-entropy on the gold label) and the kept rows
   (KL from the teacher's probabilities, distillation/losses.py). The kept rows reach the student through noise
   (distillation/augment.py's word masking and replacement) while the teacher labelled them clean: Noisy Student's
   point, the student must match the teacher where the teacher had it easier;
3. the student's best dev model becomes the next round's teacher.

``output_dir/round-0`` holds the teacher's run, ``round-R`` each student's; ``output_dir/best`` is the last student;
``output_dir/metrics.jsonl`` has one record per round and split (dev, test) and ``results.json`` all rounds.

Bad input: an unlabeled file with no text is an error; a round whose teacher is sure of no row (none ≥ the
threshold) is an error naming the threshold and the highest confidence seen (the student would be the labelled-only
model again); texts the unlabeled file shares with the dev or test split are a warning with their counts.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import shutil
import sys
import time
from collections import Counter
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import write_text_atomic
from ..distillation.augment import mask_words, replace_words, unlabeled
from ..distillation.losses import soft_target_loss
from ..distillation.student import copied_student
from ..model.heads import IGNORE_INDEX
from ..textio import read_numbered_rows, read_texts
from ..tokenization import AutoTokenizer
from ..training import Trainer
from ..training.batches import EpochBatches
from ..training.device import resolve_device
from ..training.metrics import MetricsLog
from ..training.state import check_output_dir
from ..training.threads import cpu_threads
from .config import FinetuneConfig
from .data import LabelMap, normalize_text
from .models import MODEL_CLASSES
from .tasks import SequenceTask, build_task
from .train import FinetuneResult, build_model, finetune, load_splits, model_dir, seed_everything

logger = logging.getLogger(__name__)
NOISE = {"p_mask": 0.1, "p_replace": 0.1}  # augment.py's rules that keep a sentence's sense (n-gram cuts can drop it)


@dataclasses.dataclass
class PseudoLabels:
    """The teacher's view of the unlabeled texts: logits and probabilities of all, and the rows kept."""

    texts: list[str]
    logits: np.ndarray  # (texts, classes)
    probabilities: np.ndarray  # softmax of the logits
    kept: np.ndarray  # indices of the rows whose top probability is ≥ the threshold
    labels: np.ndarray  # the kept rows' argmax classes


def read_unlabeled(config: FinetuneConfig) -> list[str]:
    """The distinct texts of ``unlabeled_file``: a .txt file's lines, or a data file's ``text`` column."""
    path = Path(config.unlabeled_file)
    if path.suffix.lower() == ".txt" or not path.suffix:
        if not path.is_file():
            raise FileNotFoundError(f"no such unlabeled_file: {path}")
        texts = read_texts(path)
    else:
        column = config.columns.get("text", "text")
        rows = read_numbered_rows(path)
        missing = [line for line, row in rows if not isinstance(row.get(column), str)]
        if missing:
            raise ValueError(f"unlabeled_file {path} line {missing[0]} has no text in column {column!r}")
        texts = [row[column] for _, row in rows]
    texts = [normalize_text(t) if config.normalize else t for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"unlabeled_file {path} holds no text: self-training needs texts for the teacher to label")
    return list(dict.fromkeys(texts))  # a text repeated would weigh its pseudo-label several times


def warn_overlap(texts: list[str], splits: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Counts of unlabeled texts that are dev / test texts; a warning names them (their scores would flatter)."""
    unlabeled_set = set(texts)
    counts = {name: len(unlabeled_set & {e["text"] for e in splits[name]}) for name in ("dev", "test")}
    if any(counts.values()):
        logger.warning("unlabeled_file shares %d texts with the test split and %d with dev: the student learns the "
                       "teacher's labels for them, so their scores are not those of unseen texts", counts["test"],
                       counts["dev"])
    return counts


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, shifted by the row maximum so that large logits do not overflow."""
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def pseudo_label(teacher: nn.Module, task: SequenceTask, texts: list[str], threshold: float) -> PseudoLabels:
    """The teacher's logits for ``texts`` (eval mode) and the rows whose top probability is ≥ ``threshold``."""
    logits = task.predict(teacher, unlabeled(texts)).astype(np.float64)
    probabilities = softmax(logits)
    kept = np.flatnonzero(probabilities.max(1) >= threshold)
    if not len(kept):
        raise ValueError(f"no unlabeled row reaches confidence_threshold={threshold}: the teacher's highest top "
                         f"probability is {probabilities.max():.4f}; lower the threshold")
    return PseudoLabels(texts, logits, probabilities, kept, probabilities[kept].argmax(1))


def balanced_rows(pseudo: PseudoLabels, shares: np.ndarray) -> np.ndarray:
    """Indices of kept rows, repeats allowed, as many as were kept, whose classes follow ``shares`` (the labelled
    rows' class fractions): each class's rows by falling confidence, cut short or cycled to its count."""
    chosen = []
    for label, share in enumerate(shares):
        rows = pseudo.kept[pseudo.labels == label]
        if len(rows):  # a class the teacher never predicts confidently has nothing to repeat
            by_confidence = rows[np.argsort(-pseudo.probabilities[rows, label], kind="stable")]
            chosen.append(np.resize(by_confidence, round(share * len(pseudo.kept))))
    return np.concatenate(chosen)


def noisy_texts(texts: list[str], vocabulary_texts: list[str], mask_token: str, seed: int) -> list[str]:
    """Each text with words masked and replaced (augment.py's rules, ``NOISE``'s rates), one noisy copy each."""
    rng = random.Random(seed)
    counts = Counter(word for text in vocabulary_texts for word in text.split())
    vocabulary, cumulative = list(counts), list(accumulate(counts.values()))
    out = []
    for text in texts:
        words = mask_words(text.split(), NOISE["p_mask"], mask_token, rng)
        out.append(" ".join(replace_words(words, NOISE["p_replace"], vocabulary, cumulative, rng)) or text)
    return out


def student_features(task: SequenceTask, train: list[dict[str, Any]], inputs: list[str],
                     teacher_logits: np.ndarray) -> list[dict[str, Any]]:
    """Labelled features (gold label), then one feature per window of each pseudo-labelled input (a noisy text)
    with no gold label and ``teacher_logits`` (of its clean text, row by row) as its target."""
    labelled = [dict(f, teacher_logits=None) for f in task.features(train, training=True)]
    soft = [dict(f, label=IGNORE_INDEX, teacher_logits=teacher_logits[f["doc"]].tolist())
            for f in task.features(unlabeled(inputs), training=True)]
    return labelled + soft


def soft_collate(task: SequenceTask, num_labels: int):
    """The task's batch plus ``teacher_logits`` (zeros on labelled rows, whose ``labels`` are gold)."""
    def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = task.collate(features)
        batch["teacher_logits"] = torch.tensor([f["teacher_logits"] or [0.0] * num_labels for f in features],
                                               dtype=torch.float)
        return batch
    return collate


def student_loss(logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-row mean over the batch: cross-entropy on gold rows, KL(teacher ‖ student) (T = 1) on pseudo-labelled
    rows (``labels`` = IGNORE_INDEX)."""
    gold = labels != IGNORE_INDEX
    total = F.cross_entropy(logits[gold].float(), labels[gold], reduction="sum") if gold.any() else logits.sum() * 0
    soft = ~gold
    if soft.any():
        total = total + soft_target_loss(logits[soft], teacher_logits[soft], 1.0) * int(soft.sum())
    return total / len(labels)


def student_step(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """The Trainer's step for a student: logits (dropout on), the mixed loss, the batch's real tokens."""
    logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits
    return student_loss(logits, batch["labels"], batch["teacher_logits"]), {
        "tokens": float(batch["attention_mask"].sum()), "pseudo_fraction": float((batch["labels"] < 0).float().mean())}


def class_counts(labels: LabelMap, ids: np.ndarray) -> dict[str, int]:
    return {labels.labels[i]: int(n) for i, n in enumerate(np.bincount(ids, minlength=len(labels)))}


def build_student(config: FinetuneConfig, labels: LabelMap) -> nn.Module:
    """The pretrained model under a fresh head (Noisy Student's students start afresh, not from the teacher); with
    ``student_layers``, every other of its layers (distillation/student.py)."""
    model = build_model(config, labels)
    return copied_student(model, config.student_layers) if config.student_layers else model


def round_dir(config: FinetuneConfig, round_number: int) -> Path:
    return Path(config.output_dir) / f"round-{round_number}"


def train_student(config: FinetuneConfig, round_number: int, task: SequenceTask, tokenizer: Any,
                  labels: LabelMap, features: list[dict[str, Any]], dev: list[dict[str, Any]]
                  ) -> tuple[nn.Module, Any, int]:
    """One student's fine-tuning run in ``round-R`` (best dev model kept in its ``best``): the best model, the
    Trainer's outcome and the steps of an epoch."""
    seed_everything(config.seed + round_number)
    student = build_student(config, labels)
    folder = round_dir(config, round_number)
    check_output_dir(folder, False, config.overwrite)
    data = EpochBatches(features, config.batch_size, soft_collate(task, len(labels)), seed=config.seed + round_number,
                        bucket_size=50 if config.bucket_by_length else 1, length=task.length)
    epochs = config.student_epochs or config.epochs  # the students see far more rows than the teacher of round 0
    args = dataclasses.replace(config, epochs=epochs).training_arguments(
        data.steps_per_epoch, config.metric, ("loss", "learning_rate", config.metric, "pseudo_fraction"),
        output_dir=str(folder), seed=config.seed + round_number, head_prefixes=student.head_prefixes,
        head_lr_scale=config.head_lr_scale, greater_is_better=config.greater_is_better,
        early_stopping_patience=config.early_stopping_patience)
    outcome = Trainer(student, args, data, student_step, evaluate=lambda m: task.evaluate(m, dev),
                      tokenizer=tokenizer).train()
    best = type(student).from_pretrained(folder / "best").to(resolve_device(config.device))
    return best, outcome, config.steps_per_epoch(data.steps_per_epoch)


def round_records(round_number: int, dev: dict[str, float], test: dict[str, float] | None,
                  extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's metrics.jsonl lines for one round: its dev and test scores with what the round used."""
    records = [{"round": round_number, "split": "dev", **dev, **extra}]
    if test is not None:
        records.append({"round": round_number, "split": "test", **test, **extra})
    return records


def self_train(config: FinetuneConfig, resume: bool = False) -> FinetuneResult:
    """Round 0 (a plain fine-tuning run), then ``self_training`` rounds of teacher → pseudo labels → student."""
    if resume:
        raise ValueError("--resume continues one training run; self-training runs several: start it again")
    resolve_device(config.device)
    check_output_dir(config.output_dir, False, config.overwrite)
    if config.overwrite:  # an earlier run's rounds, which check_output_dir does not know
        for folder in Path(config.output_dir).glob("round-*"):
            shutil.rmtree(folder)
    with cpu_threads(config.threads):
        return _self_train(config)


def _self_train(config: FinetuneConfig) -> FinetuneResult:
    started = time.perf_counter()
    seed_everything(config.seed)
    texts = read_unlabeled(config)
    splits = load_splits(config)
    if any("text_pair" in e for e in splits["train"]):
        raise ValueError("self_training labels single texts (unlabeled_file); this data set holds text pairs")
    overlap = warn_overlap(texts, splits)
    print(f"self-training: {len(texts):,} unlabeled texts, {len(splits['train']):,} labelled, "
          f"{config.self_training} round(s), confidence_threshold {config.confidence_threshold}", file=sys.stderr)
    teacher_run = finetune(dataclasses.replace(config, self_training=0, unlabeled_file=None,
                                               output_dir=str(round_dir(config, 0))))
    log = MetricsLog(Path(config.output_dir) / "metrics.jsonl")
    history = round_records(0, teacher_run.dev, teacher_run.test, {"labelled": len(splits["train"])})
    for record in history:
        log.write(record)
    tokenizer = AutoTokenizer.from_pretrained(model_dir(config))
    device = resolve_device(config.device)
    teacher = MODEL_CLASSES["classification"].from_pretrained(round_dir(config, 0) / "best").to(device)
    labels = LabelMap([teacher.config.id2label[i] for i in range(len(teacher.config.id2label))])
    task = build_task(config, tokenizer, labels)
    gold = np.bincount([labels.label2id[e["label"]] for e in splits["train"]], minlength=len(labels))
    vocabulary_texts = [e["text"] for e in splits["train"]] + texts
    for round_number in range(1, config.self_training + 1):
        pseudo = pseudo_label(teacher, task, texts, config.confidence_threshold)
        rows = balanced_rows(pseudo, gold / gold.sum())
        inputs = noisy_texts([texts[i] for i in rows], vocabulary_texts, tokenizer.mask_token,
                             config.seed + round_number)
        features = student_features(task, splits["train"], inputs, pseudo.logits[rows])
        print(f"round {round_number}: {len(pseudo.kept):,} of {len(texts):,} unlabeled rows kept "
              f"(≥ {config.confidence_threshold}), classes {class_counts(labels, pseudo.labels)}, balanced to "
              f"{class_counts(labels, pseudo.logits[rows].argmax(1))} ({len(set(rows.tolist())):,} distinct)",
              file=sys.stderr)
        teacher, outcome, steps_per_epoch = train_student(config, round_number, task, tokenizer, labels, features,
                                                          splits["dev"])
        dev = task.evaluate(teacher, splits["dev"])
        test = task.evaluate(teacher, splits["test"]) if splits["test"] else None
        records = round_records(round_number, dev, test, {"pseudo_labelled": len(pseudo.kept),
                                                          "labelled": len(splits["train"]), "steps": outcome.step})
        for record in records:
            log.write(record)
        history += records
    shutil.copytree(round_dir(config, config.self_training) / "best", Path(config.output_dir) / "best")
    speeds = [r["tokens_per_second"] for r in outcome.history if r["split"] == "train"]
    result = FinetuneResult(
        output_dir=config.output_dir, metric=config.metric, dev=dev, test=test,
        train_seconds=time.perf_counter() - started, steps=outcome.step,
        epochs_run=round(outcome.step / steps_per_epoch, 4), stopped_early=outcome.stopped_early,
        tokens_per_second=float(np.median(speeds)) if speeds else 0.0, history=history)
    write_results(config, result, overlap)
    return result


def write_results(config: FinetuneConfig, result: FinetuneResult, overlap: dict[str, int]) -> None:
    """``results.json``: the last student's scores, every round's, the overlap counts and the config."""
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
    summary |= {"rounds": result.history, "overlap": overlap, "config": config.to_dict()}
    write_text_atomic(Path(config.output_dir) / "results.json", json.dumps(summary, indent=2) + "\n")
    return result
