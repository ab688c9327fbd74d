"""Evaluation metrics in plain numpy: accuracy, macro-F1, Matthews correlation, Pearson / Spearman, entity-level
precision / recall / F1 (exact span and type), and SQuAD's exact match / token F1."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import numpy as np

from ..training.correlation import pearson, spearman
from .ner import bio_spans


def accuracy(gold: Sequence, predicted: Sequence) -> float:
    """Share of exact matches."""
    gold, predicted = np.asarray(gold), np.asarray(predicted)
    return float((gold == predicted).mean()) if gold.size else 0.0


def confusion(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> np.ndarray:
    """Counts[gold, predicted]."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(gold, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> float:
    """F1 averaged over the labels present in gold or predictions (as scikit-learn's ``average="macro"``)."""
    matrix = confusion(gold, predicted, num_labels)
    tp = np.diag(matrix).astype(float)
    support, chosen = matrix.sum(1), matrix.sum(0)
    present = (support + chosen) > 0
    f1 = np.divide(2 * tp, support + chosen, out=np.zeros_like(tp), where=(support + chosen) > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def matthews(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> float:
    """Matthews correlation, multi-class (Gorodkin's R_K); 0 when undefined."""
    matrix = confusion(gold, predicted, num_labels).astype(float)
    t, p = matrix.sum(1), matrix.sum(0)
    n, correct = matrix.sum(), np.trace(matrix)
    denominator = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return float((correct * n - t @ p) / denominator) if denominator else 0.0


def classification_metrics(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> dict[str, float]:
    """accuracy, macro_f1, mcc."""
    return {"accuracy": accuracy(gold, predicted), "macro_f1": macro_f1(gold, predicted, num_labels),
            "mcc": matthews(gold, predicted, num_labels)}


def multi_label_metrics(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Subset accuracy, and micro / macro F1 over labels, for multi-hot (n, labels) arrays."""
    gold, predicted = np.asarray(gold, bool), np.asarray(predicted, bool)
    tp = (gold & predicted).sum(0).astype(float)
    denominator = (gold.sum(0) + predicted.sum(0)).astype(float)
    per_label = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    micro_denominator = denominator.sum()
    return {"subset_accuracy": float((gold == predicted).all(1).mean()),
            "micro_f1": float(2 * tp.sum() / micro_denominator) if micro_denominator else 0.0,
            "macro_f1": float(per_label[denominator > 0].mean()) if (denominator > 0).any() else 0.0}


def regression_metrics(gold: Sequence[float], predicted: Sequence[float]) -> dict[str, float]:
    """pearson, spearman, mse."""
    diff = np.asarray(gold, float) - np.asarray(predicted, float)
    return {"pearson": pearson(gold, predicted), "spearman": spearman(gold, predicted), "mse": float(diff @ diff /
                                                                                                     max(1, len(diff)))}


def entity_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Entity-level precision / recall / F1 over sentences of BIO tags: an entity counts when type and span match."""
    gold_spans = {(i, *s) for i, tags in enumerate(gold) for s in bio_spans(tags)}
    predicted_spans = {(i, *s) for i, tags in enumerate(predicted) for s in bio_spans(tags)}
    correct = len(gold_spans & predicted_spans)
    precision = correct / len(predicted_spans) if predicted_spans else 0.0
    recall = correct / len(gold_spans) if gold_spans else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tags_right = sum(g == p for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True))
    n_tags = sum(len(g) for g in gold)
    return {"precision": precision, "recall": recall, "f1": f1, "tag_accuracy": tags_right / max(1, n_tags)}


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower-case, drop punctuation and English articles, collapse whitespace."""
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def answer_tokens(text: str) -> list[str]:
    """Words of a normalised answer; CJK characters count one by one (as the CMRC evaluation does)."""
    return [t for word in normalize_answer(text).split() for t in
            (list(word) if any("\u4e00" <= c <= "\u9fff" for c in word) else [word])]


def qa_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Exact match and token-overlap F1 (×1, not ×100) of predicted against gold answers."""
    exact, f1s = [], []
    for g, p in zip(gold, predicted, strict=True):
        exact.append(float(normalize_answer(g) == normalize_answer(p)))
        g_tokens, p_tokens = answer_tokens(g), answer_tokens(p)
        common = sum((collections.Counter(g_tokens) & collections.Counter(p_tokens)).values())
        if not g_tokens or not p_tokens:
            f1s.append(float(g_tokens == p_tokens))
        elif common == 0:
            f1s.append(0.0)
        else:
            precision, recall = common / len(p_tokens), common / len(g_tokens)
            f1s.append(2 * precision * recall / (precision + recall))
    return {"exact_match": float(np.mean(exact)) if exact else 0.0, "f1": float(np.mean(f1s)) if f1s else 0.0}
