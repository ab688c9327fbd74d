"""The files of a byte-level BPE folder (GPT-2 / RoBERTa): ``vocab.json`` and ``merges.txt``, read strictly.

- ``vocab.json``: one JSON object, token → id, each id a distinct integer.
- ``merges.txt``: an optional ``#version`` line, then one merge rule a line, ``"Ġ t"``, in the order learned.

A byte-level vocabulary must hold all 256 byte characters (else some text has no encoding at all), and every merge
must join two vocabulary tokens into a third: a folder that breaks either is refused with what is wrong, as the
``tokenizers`` library refuses a merge whose tokens are missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..atomic import write_text_atomic
from .bpe import read_merges
from .byte_level import alphabet

VOCAB_JSON = "vocab.json"
MERGES_TXT = "merges.txt"
MERGES_HEADER = "#version: 0.2"


def load_vocab_json(path: str | os.PathLike) -> dict[str, int]:
    """Read ``vocab.json`` (token → id), checking its shape."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"byte-level BPE vocabulary not found: {path}")
    try:
        vocab = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected a vocab.json mapping tokens to ids") from None
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path} must be a non-empty JSON object mapping tokens to ids, got "
                         f"{type(vocab).__name__ if vocab else 'an empty one'}")
    bad = next(((t, i) for t, i in vocab.items() if type(i) is not int or i < 0), None)
    if bad is not None:
        raise ValueError(f"{path}: token {bad[0]!r} has id {bad[1]!r}; every id must be a non-negative integer")
    if len(set(vocab.values())) != len(vocab):
        repeated = sorted(vocab.values())
        same = next(a for a, b in zip(repeated, repeated[1:], strict=False) if a == b)
        raise ValueError(f"{path}: id {same} is given to more than one token; each token needs its own id")
    return vocab


def load_merges_txt(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``merges.txt`` into (left, right) pairs, in rank order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"byte-level BPE merges not found: {path} (a vocab.json needs its merges.txt)")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 ({error})") from None
    return read_merges(lines, str(path))


def check_byte_vocab(vocab: dict[str, int], merges: list[tuple[str, str]], source: str) -> None:
    """Every byte character is a token, and every merge joins two tokens into a third."""
    missing = [c for c in alphabet() if c not in vocab]
    if missing:
        raise ValueError(f"{source}: the vocabulary lacks {len(missing)} of the 256 byte characters (first: "
                         f"{missing[0]!r}), so some text could not be encoded; is it a byte-level BPE vocabulary?")
    for rank, (left, right) in enumerate(merges):
        for token in (left, right, left + right):
            if token not in vocab:
                raise ValueError(f"{source}: merge rule {rank} ({left!r} + {right!r}) uses {token!r}, which is not "
                                 "in the vocabulary; vocab.json and merges.txt do not belong together")


def save_vocab_json(vocab: dict[str, int], path: str | os.PathLike) -> Path:
    """Write ``vocab.json`` in id order, atomically."""
    ordered = dict(sorted(vocab.items(), key=lambda item: item[1]))
    return write_text_atomic(path, json.dumps(ordered, ensure_ascii=False) + "\n")


def save_merges_txt(merges: list[tuple[str, str]], path: str | os.PathLike) -> Path:
    """Write ``merges.txt`` with the ``#version`` header the ``tokenizers`` library writes, atomically."""
    return write_text_atomic(path, MERGES_HEADER + "\n" + "".join(f"{a} {b}\n" for a, b in merges))
