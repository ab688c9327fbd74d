"""Task data: labelled examples from CSV / TSV / JSON-lines files, label maps, seeded splits, text normalisation.

An example is a plain dict with the task's named fields:

=====================  ==============================================================
task                   fields
=====================  ==============================================================
classification         ``text``, ``label`` (+ ``text_pair`` for pair classification)
multi_label            ``text``, ``label`` (a list, or one string joined by ``|``)
regression             ``text``, ``text_pair``, ``score`` (a float, as in the BertSim recipe)
token_classification   ``tokens``, ``tags`` (lists; in CSV/TSV, strings split on spaces)
question_answering     ``question``, ``context``, ``answer`` (text) + ``answer_start``
=====================  ==============================================================

Bad data is refused with the problem named (a missing column, an empty split, an empty side of a pair, labels in
dev/test that training never saw); nothing is silently dropped.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..textio import read_numbered_rows

TASKS = ("classification", "multi_label", "regression", "token_classification", "question_answering")
REQUIRED = {
    "classification": ("text", "label"),
    "multi_label": ("text", "label"),
    "regression": ("text", "text_pair", "score"),
    "token_classification": ("tokens", "tags"),
    "question_answering": ("question", "context", "answer", "answer_start"),
}
OPTIONAL = {"classification": ("text_pair",), "multi_label": ("text_pair",)}
MULTI_LABEL_SEPARATOR = "|"


def check_task(task: str) -> str:
    """The task name, or a clear error listing the known ones."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    return task


def check_columns(columns: Any, roles: Sequence[str], purpose: str) -> dict[str, str]:
    """``columns`` as a mapping of role → the file's column name, each role one of ``roles``: an unknown role, or
    YAML's ``{text:sentence}`` (no space after the colon: one key, no value), is refused with what was read, rather
    than ignored until a column is missing."""
    if not isinstance(columns, dict):
        raise ValueError(f"columns must map a role to a column name, e.g. {{text: review}}; got {columns!r:.80}")
    read = f"(columns read as {columns!r:.100})"
    checked = {}
    for role, column in columns.items():
        if column is None and isinstance(role, str) and ":" in role:
            left, _, right = role.partition(":")
            raise ValueError(f"columns: {role!r} is one key without a value {read}: YAML needs a space after the "
                             f"colon, {{{left}: {right}}}")
        if role not in roles:
            close = difflib.get_close_matches(str(role), roles, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"columns: unknown role {role!r} {read}; the roles {purpose} are "
                             f"{', '.join(roles)}{hint}")
        if isinstance(column, (int, float)) and not isinstance(column, bool):
            column = str(column)  # a header named 2024
        if not isinstance(column, str) or not column:
            raise ValueError(f"columns: the role {role!r} needs a column name, got {column!r:.60} {read}")
        checked[role] = column
    return checked


def task_roles(task: str) -> tuple[str, ...]:
    """The fields a ``task``'s examples have, which ``columns`` may map."""
    return REQUIRED[check_task(task)] + OPTIONAL.get(task, ())


# -- text normalisation ------------------------------------------------------------------------------------------
# The BertSim recipe's cleaning (its ``text_normal_l1``), step for step and with its patterns, so that a model
# fine-tuned here sees the text that recipe fed it. Its quirks are theirs and kept on purpose: the URL pattern also
# eats bare domains and decimals ("3.14", "example.com"), and only ASCII letters, digits, the CJK block
# U+4E00–U+9FA5 and ``[]@#`` survive (accented and other non-Latin letters become spaces).
_ESCAPED_NEWLINE = "\\n"  # the two characters backslash and n, as exported data spells a line break
_URL = re.compile(r"(https?://)?(www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b([-a-zA-Z0-9()@:%_+.~#?&/=]*)")
_NOT_KEPT = re.compile(r"[^\[\]@#a-zA-Z0-9\u4e00-\u9fa5]")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """The BertSim recipe's cleaning: line breaks (real or written ``\\n``) and URLs to spaces, keep ASCII letters,
    digits, CJK and ``[]@#``, collapse whitespace."""
    text = str(text).replace(_ESCAPED_NEWLINE, " ").replace("\n", " ").strip()
    text = _URL.sub(" ", text)
    text = _NOT_KEPT.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


# -- reading files -----------------------------------------------------------------------------------------------
def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a ``.csv``, ``.tsv`` (header line first) or ``.jsonl`` / ``.json`` (one object a line) file."""
    return [row for _, row in read_numbered_rows(path)]


def label_text(value: Any, where: str) -> str:
    """One rule for every label: its text, with integral numbers written as integers (``1``, ``1.0``, ``"1"`` and
    ``"1.0"`` are all ``"1"``) and booleans as ``true`` / ``false``; a missing label is an error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}: the label is missing")
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _as_list(value: Any, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"{where}: {name} must be a list of strings (or a space-separated string), got {value!r:.60}")


def _text(value: Any, name: str, where: str, normalize: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} must be a string, got {value!r:.60}")
    value = normalize_text(value) if normalize else value.strip()
    if not value:
        raise ValueError(f"{where}: {name} is empty; every example needs text on each side")
    return value


def to_example(row: dict[str, Any], task: str, where: str, normalize: bool = False) -> dict[str, Any]:
    """One validated example from one row (``where`` names it in errors)."""
    example: dict[str, Any] = {}
    if task in ("classification", "multi_label", "regression"):
        example["text"] = _text(row["text"], "text", where, normalize)
        if row.get("text_pair") is not None:
            example["text_pair"] = _text(row["text_pair"], "text_pair", where, normalize)
    if task == "classification":
        example["label"] = label_text(row["label"], where)
    elif task == "multi_label":
        labels = row["label"]
        if labels is None:
            raise ValueError(f"{where}: the label is missing")
        labels = labels.split(MULTI_LABEL_SEPARATOR) if isinstance(labels, str) else labels
        example["label"] = sorted({label_text(x, where) for x in labels if str(x).strip()})
    elif task == "regression":
        try:
            example["score"] = float(row["score"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}: score must be a number, got {row['score']!r:.60}") from None
        if not math.isfinite(example["score"]):
            raise ValueError(f"{where}: score is {example['score']}; scores must be finite numbers")
    elif task == "token_classification":
        example["tokens"] = _as_list(row["tokens"], "tokens", where)
        example["tags"] = _as_list(row["tags"], "tags", where)
        if len(example["tokens"]) != len(example["tags"]):
            raise ValueError(f"{where}: {len(example['tokens'])} tokens but {len(example['tags'])} tags")
        if not example["tokens"]:
            raise ValueError(f"{where}: no tokens")
    elif task == "question_answering":
        example["question"] = _text(row["question"], "question", where, False)
        example["context"] = _text(row["context"], "context", where, False)
        example["answer"] = str(row["answer"])
        example["answer_start"] = int(row["answer_start"])
        start = example["answer_start"]
        if example["context"][start:start + len(example["answer"])] != example["answer"]:
            raise ValueError(f"{where}: the answer {example['answer']!r:.40} is not at answer_start={start} "
                             "of the context")
    return example


def load_examples(
    path: str | os.PathLike, task: str, columns: dict[str, str] | None = None, normalize: bool = False
) -> list[dict[str, Any]]:
    """Validated examples of a file; ``columns`` maps a field to the file's column name (``{"text": "review"}``)."""
    check_task(task)
    numbered = read_numbered_rows(path)
    return examples_from_rows([row for _, row in numbered], task, columns, normalize, source=str(path),
                              lines=[line for line, _ in numbered])


def examples_from_rows(
    rows: Sequence[dict[str, Any]], task: str, columns: dict[str, str] | None = None, normalize: bool = False,
    source: str = "data", lines: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Validated examples from rows (dicts): the column check names what is missing and what is there; messages
    name a row's file line when ``lines`` gives them, else its number."""
    columns = check_columns(columns or {}, task_roles(task), f"of {task}")
    if not rows:
        raise ValueError(f"{source} holds no examples")
    present = set(rows[0])
    for field in REQUIRED[task]:
        column = columns.get(field, field)
        if column not in present:
            raise ValueError(f"{source} has no column {column!r} (needed as {field!r} for {task}); its columns "
                             f"are {sorted(present)}; map another one with columns: {{{field}: NAME}}")
    wanted = REQUIRED[task] + OPTIONAL.get(task, ())
    renamed = [{field: row.get(columns.get(field, field)) for field in wanted} for row in rows]
    if task == "classification":
        kinds = {"boolean" if isinstance(r["label"], bool) else "number" for r in renamed
                 if isinstance(r["label"], (bool, int, float))}
        if len(kinds) == 2:  # true and 1: the same class or two? The file should say, not a guess
            raise ValueError(f"{source} mixes boolean and numeric labels (true / 1); write them one way")
    where = [f"{source} line {n}" for n in lines] if lines else [f"{source} row {i + 1}" for i in range(len(rows))]
    return [to_example(row, task, place, normalize) for place, row in zip(where, renamed, strict=True)]


def deduplicate(examples: Iterable[dict[str, Any]], key: tuple[str, ...] = ("text", "text_pair")) -> list[dict]:
    """Keep the first example of each distinct ``key`` (by default the text, and its pair)."""
    seen: set = set()
    kept = []
    for example in examples:
        k = tuple(json.dumps(example.get(name), ensure_ascii=False) for name in key)
        if k not in seen:
            seen.add(k)
            kept.append(example)
    return kept


def split_examples(
    examples: Sequence[dict[str, Any]], seed: int = 0, dev: float = 0.1, test: float = 0.1
) -> dict[str, list[dict[str, Any]]]:
    """A fixed, seeded train / dev / test split (shuffle with ``random.Random(seed)``, then cut)."""
    if not 0 <= dev < 1 or not 0 <= test < 1 or dev + test >= 1:
        raise ValueError(f"dev={dev} and test={test} must be fractions that leave some training data")
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_dev, n_test = round(len(order) * dev), round(len(order) * test)
    return {"train": order[n_dev + n_test:], "dev": order[:n_dev], "test": order[n_dev:n_dev + n_test]}


# -- labels ------------------------------------------------------------------------------------------------------
@dataclass
class LabelMap:
    """Label names ↔ ids, saved in config.json as ``id2label`` / ``label2id`` (Hugging Face's names)."""

    labels: list[str]

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_examples(cls, examples: Sequence[dict[str, Any]], task: str) -> LabelMap:
        """The labels seen in training, sorted (for tags: ``O`` first, then by entity type and B before I)."""
        if task == "token_classification":
            tags = {t for e in examples for t in e["tags"]}
            return cls(sorted(tags, key=lambda t: (t != "O", t[2:], t[:2])))
        if task == "multi_label":
            return cls(sorted({label for e in examples for label in e["label"]}))
        if task == "classification":
            return cls(sorted({e["label"] for e in examples}))
        return cls([])

    def check(self, examples: Sequence[dict[str, Any]], task: str, split: str) -> None:
        """Refuse labels that training never saw (the model has no output for them)."""
        if task in ("regression", "question_answering"):
            return
        known = set(self.labels)
        if task == "token_classification":
            seen = {t for e in examples for t in e["tags"]}
        elif task == "multi_label":
            seen = {label for e in examples for label in e["label"]}
        else:
            seen = {e["label"] for e in examples}
        unseen = sorted(seen - known)
        if unseen:
            raise ValueError(f"the {split} split has label(s) {unseen[:10]} that the training split lacks "
                             f"(known: {self.labels[:20]}); the model cannot predict them — fix the split or "
                             "add training examples")
