"""``vocab.txt``: one token a line, its id the line number (0-based), as in google-research/bert."""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import write_text_atomic


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Read a ``vocab.txt`` into a token → id dict (a repeated token keeps its last id, as in transformers)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): index for index, line in enumerate(f)}
    if not vocab:
        raise ValueError(f"vocabulary file is empty: {path}")
    return vocab


def save_vocab(vocab: dict[str, int], path: str | os.PathLike) -> Path:
    """Write tokens in id order, atomically (a temp file renamed over the target)."""
    path = Path(path)
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise ValueError("vocabulary ids are not consecutive from 0; cannot write a vocab.txt")
    tokens = sorted(vocab, key=vocab.__getitem__)
    write_text_atomic(path, "".join(f"{token}\n" for token in tokens))
    return path
