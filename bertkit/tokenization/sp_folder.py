"""A SentencePiece folder's files: its model file and the tokenizer's arguments from ``tokenizer_config.json``
(which family reads the folder is ``sp_files.py``'s question; this is what every family reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .byte_bpe_files import token_text
from .lookup import SPECIAL_ROLES
from .pretrained import read_config
from .sp_tokenizer_json import is_unigram_json, read_unigram_json

MODEL_FILES = ("spiece.model", "sentencepiece.bpe.model", "spm.model", "sentencepiece.model", "tokenizer.model")
FAMILY_KEY = "sentencepiece_family"  # beside a generic tokenizer_class: the family bertkit reads the folder as
SETTINGS = ("do_lower_case", "keep_accents", "remove_space", "split_by_punct")


def model_file(folder: Path, preferred: str | None = None) -> Path | None:
    """The folder's SentencePiece model file (the family's own name first), or None."""
    for name in (preferred, *MODEL_FILES):
        if name and (folder / name).is_file():
            return folder / name
    return None


def tokenizer_arguments(folder: Path, cls: type) -> dict[str, Any]:
    """The family's arguments for this folder: its model file and what tokenizer_config.json sets."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
    found = model_file(folder, cls.vocab_file_name)
    config = read_config(folder)
    arguments: dict[str, Any]
    if found is not None:
        arguments = {"vocab_file": found}
    elif (folder / "tokenizer.json").is_file() and is_unigram_json(folder / "tokenizer.json"):
        _, implied = read_unigram_json(folder / "tokenizer.json")
        arguments = {"tokenizer_json": folder / "tokenizer.json"}
        probe = cls.check_settings(cls.__new__(cls), {})
        if implied["split_by_punct"] and "split_by_punct" not in probe:  # never drop a split silently
            raise ValueError(f"{folder / 'tokenizer.json'}: a Punctuation pre_tokenizer is DeBERTa-v2's "
                             f"split_by_punct, which {cls.__name__} does not have")
        arguments.update({key: value for key, value in implied.items() if key in probe})
    else:
        raise FileNotFoundError(f"{folder} holds no SentencePiece model; {cls.__name__} reads {cls.vocab_file_name} "
                                "or a Unigram tokenizer.json")
    for role in SPECIAL_ROLES:
        if config.get(role):
            arguments[role] = token_text(config[role])
    extra = config.get("additional_special_tokens") or config.get("extra_special_tokens")
    if isinstance(extra, list) and extra:
        arguments["additional_special_tokens"] = [token_text(t) for t in extra]
    if isinstance(config.get("model_max_length"), int):
        arguments["model_max_length"] = config["model_max_length"]
    probe = cls.check_settings(cls.__new__(cls), {})  # the settings this family knows
    for key in SETTINGS:
        if key in config and key in probe and key not in arguments:
            arguments[key] = config[key]
    return arguments
