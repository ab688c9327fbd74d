"""Extractive QA: ``[CLS] question [SEP] context-window [SEP]`` features over windows of a long context (a new
window every ``doc_stride`` tokens), start / end logits → the n-best spans no longer than ``max_answer_length``
tokens → the best one, mapped back to the original characters of the context through the tokenizer's offsets.

A window that does not hold the whole answer is trained to point at ``[CLS]`` (google-research/bert's run_squad).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from . import metrics
from .task_base import Task, inputs_of

MAX_QUESTION_TOKENS = 64


class QATask(Task):
    """Question answering over windows of the context."""

    def features(self, examples: Sequence[dict[str, Any]], training: bool = False) -> list[dict[str, Any]]:
        """One feature per context window, with the token → character offsets of its context part."""
        tok, config = self.tokenizer, self.config
        out = []
        for doc, example in enumerate(examples):
            question = tok.text_to_ids(example["question"])[:MAX_QUESTION_TOKENS]
            context, spans = tok.text_to_ids_with_offsets(example["context"])
            budget = config.max_length - len(question) - 3
            if budget < 1:
                raise ValueError(f"max_length={config.max_length} leaves no room for the context after a "
                                 f"{len(question)}-token question")
            stride = min(config.doc_stride, budget)
            starts = list(range(0, max(1, len(context) - budget + stride), stride))
            answer = None
            if "answer_start" in example:
                answer = (example["answer_start"], example["answer_start"] + len(example["answer"]))
            for start in starts:
                window = context[start:start + budget]
                offset = len(question) + 2  # [CLS] question [SEP]
                feature = {"input_ids": [tok.cls_token_id, *question, tok.sep_token_id, *window, tok.sep_token_id],
                           "token_type_ids": [0] * offset + [1] * (len(window) + 1), "doc": doc,
                           "context_start": offset, "spans": spans[start:start + len(window)]}
                if answer is not None:
                    feature["start_position"], feature["end_position"] = answer_positions(
                        feature["spans"], answer, offset)
                out.append(feature)
                if start + budget >= len(context):
                    break
        return out

    def collate(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = inputs_of(features, self.pad_id, self.pad_multiple)
        batch["start_positions"] = torch.tensor([f["start_position"] for f in features])
        batch["end_positions"] = torch.tensor([f["end_position"] for f in features])
        return batch

    def unpack(self, out: Any, row: int, length: int) -> Any:
        return (out.start_logits[row, :length].float().cpu().numpy(),
                out.end_logits[row, :length].float().cpu().numpy())

    def predict(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The best span of each example over all its windows: answer text, character start / end, score."""
        features = self.features(examples)
        best: list[dict[str, Any]] = [{"answer": "", "start": 0, "end": 0, "score": -np.inf} for _ in examples]
        for feature, (start_logits, end_logits) in zip(features, self.run(model, features), strict=True):
            for candidate in n_best_spans(start_logits, end_logits, feature["context_start"],
                                          len(feature["spans"]), self.config.n_best, self.config.max_answer_length):
                score, first, last = candidate
                if score > best[feature["doc"]]["score"]:
                    context = examples[feature["doc"]]["context"]
                    a, b = feature["spans"][first][0], feature["spans"][last][1]
                    best[feature["doc"]] = {"answer": context[a:b], "start": a, "end": b, "score": float(score)}
                break  # candidates come best first
        return best

    def evaluate(self, model: nn.Module, examples: Sequence[dict[str, Any]]) -> dict[str, float]:
        predicted = self.predict(model, examples)
        return metrics.qa_metrics([e["answer"] for e in examples], [p["answer"] for p in predicted])


def answer_positions(spans: Sequence[tuple[int, int]], answer: tuple[int, int], offset: int) -> tuple[int, int]:
    """Token positions (in the whole input) of the answer's first and last token; (0, 0) if the window lacks it."""
    first = next((i for i, (a, b) in enumerate(spans) if a <= answer[0] < b), None)
    last = next((i for i, (a, b) in reversed(list(enumerate(spans))) if a < answer[1] <= b), None)
    if first is None or last is None or last < first:
        return 0, 0
    return first + offset, last + offset


def n_best_spans(
    start_logits: np.ndarray, end_logits: np.ndarray, context_start: int, context_length: int, n_best: int,
    max_answer_length: int,
) -> list[tuple[float, int, int]]:
    """(score, first, last) context-token spans, best first: the top ``n_best`` starts × ends that are in the
    context, ordered, and at most ``max_answer_length`` tokens long; score = start logit + end logit."""
    lo, hi = context_start, context_start + context_length
    starts = lo + np.argsort(start_logits[lo:hi])[::-1][:n_best]
    ends = lo + np.argsort(end_logits[lo:hi])[::-1][:n_best]
    candidates = [(float(start_logits[s] + end_logits[e]), int(s - lo), int(e - lo))
                  for s in starts for e in ends if s <= e < s + max_answer_length]
    return sorted(candidates, reverse=True)
