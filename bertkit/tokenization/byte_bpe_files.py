"""The files of a byte-level BPE folder (GPT-2 / RoBERTa): ``vocab.json`` and ``merges.txt``, read strictly.

- ``vocab.json``: one JSON object, token → id, each id a distinct integer.
- ``merges.txt``: an optional ``#version`` line, then one merge rule a line, ``"Ġ t"``, in the order learned.
- ``tokenizer_config.json``: the special tokens, ``add_prefix_space``, and (``added_tokens_decoder``) which special
  tokens eat the whitespace beside them.

A byte-level vocabulary must hold all 256 byte characters (else some text has no encoding at all), and every merge
must join two vocabulary tokens into a third: a folder that breaks either is refused with what is wrong, as the
``tokenizers`` library refuses a merge whose tokens are missing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .bpe import read_merges
from .byte_level import alphabet
from .lookup import SPECIAL_ROLES
from .pretrained import CONFIG_FILE, token_text
from .tokenizer_json import TOKENIZER_JSON, UnsupportedTokenizer

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


def check_same_model(folder: Path, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """vocab.json + merges.txt beside a tokenizer.json must hold its model (tokenizer.json may add special tokens)."""
    fix = f"fix the folder, or delete the stale file ({TOKENIZER_JSON} if {VOCAB_JSON} is right)"
    stale = [(t, i) for t, i in load_vocab_json(folder / VOCAB_JSON).items() if vocab.get(t) != i]
    if stale:
        raise ValueError(f"{folder}: {VOCAB_JSON} and {TOKENIZER_JSON} hold different vocabularies (first "
                         f"difference: {stale[0]}); {fix}")
    if load_merges_txt(folder / MERGES_TXT) != merges:
        raise ValueError(f"{folder}: {MERGES_TXT} and {TOKENIZER_JSON} hold different merges; {fix}")


def config_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer arguments a ``tokenizer_config.json`` sets (special tokens may be AddedToken dicts)."""
    arguments: dict[str, Any] = {role: token_text(config[role]) for role in SPECIAL_ROLES if config.get(role)}
    for key in ("add_prefix_space", "errors"):
        if config.get(key) is not None:
            arguments[key] = config[key]
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens")
    if isinstance(extra, list):
        arguments["additional_special_tokens"] = [token_text(t) for t in extra]
    added = config.get("added_tokens_decoder")
    if isinstance(added, dict):
        entries = [entry for entry in added.values() if isinstance(entry, dict)]
        plain = [entry.get("content") for entry in entries if not entry.get("special", True)]
        if plain:
            raise UnsupportedTokenizer(f"{CONFIG_FILE} adds the non-special token(s) {plain}, which transformers cuts "
                                       "out of any text; bertkit's byte-level BPE keeps only special tokens whole")
        arguments["lstrip_tokens"] = [entry.get("content") for entry in entries if entry.get("lstrip")]
        arguments["rstrip_tokens"] = [entry.get("content") for entry in entries if entry.get("rstrip")]
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and max_length < 1_000_000:  # transformers writes 1e30 for "none"
        arguments["model_max_length"] = max_length
    return arguments
