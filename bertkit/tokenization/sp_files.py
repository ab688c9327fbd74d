"""Which SentencePiece tokenizer a model folder holds, and its arguments from ``tokenizer_config.json``.

A folder holds one SentencePiece model (``spiece.model``, ``sentencepiece.bpe.model``, ``spm.model``, ...). The
family is the one ``tokenizer_config.json`` (else ``config.json``) names by ``tokenizer_class``, else the one its
``model_type`` implies, else the one the file's name implies (``spm.model``: DeBERTa-v2; ``sentencepiece.bpe.model``:
XLM-R; ``spiece.model``: ALBERT).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .byte_bpe_files import token_text
from .pretrained import CONFIG_FILE, read_config
from .sentencepiece_model import SentencePieceModelError
from .sp_families import FAMILIES, MODEL_TYPES
from .sp_tokenizer import ROLES, SentencePieceTokenizer
from .sp_tokenizer_json import is_unigram_json, read_unigram_json

MODEL_FILES = ("spiece.model", "sentencepiece.bpe.model", "spm.model", "sentencepiece.model", "tokenizer.model")
BY_FILE_NAME = {"spm.model": "DebertaV2Tokenizer", "sentencepiece.bpe.model": "XLMRobertaTokenizer",
                "spiece.model": "AlbertTokenizer", "sentencepiece.model": "AlbertTokenizer"}
FAMILY_KEY = "sentencepiece_family"  # beside a generic tokenizer_class: the family bertkit reads the folder as
SETTINGS = ("do_lower_case", "keep_accents", "remove_space", "split_by_punct")


def model_file(folder: Path, preferred: str | None = None) -> Path | None:
    """The folder's SentencePiece model file (the family's own name first), or None."""
    for name in (preferred, *MODEL_FILES):
        if name and (folder / name).is_file():
            return folder / name
    return None


def declares_family(folder: Path) -> bool:
    """Whether the folder's tokenizer_class or model_type names one of bertkit's SentencePiece families."""
    try:
        family_of(folder, by_file_name=False)
    except (FileNotFoundError, SentencePieceModelError):
        return False
    return True


def family_of(folder: Path, by_file_name: bool = True) -> type[SentencePieceTokenizer]:
    """The SentencePiece family of a folder: its tokenizer_class, else model_type, else the model file's name."""
    config = read_config(folder)
    model_config = {}
    if (folder / "config.json").is_file():
        try:
            model_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            model_config = {}
    name = config.get("tokenizer_class") or model_config.get("tokenizer_class")
    if isinstance(name, str):
        name = name.removesuffix("Fast")
        if name == "T5TokenizerFast" or name == "MT5Tokenizer":
            name = "T5Tokenizer"
        if name in FAMILIES:
            return FAMILIES[name]
        if config.get(FAMILY_KEY) in FAMILIES:  # BPE: transformers reads the tokenizer.json, bertkit the family
            return FAMILIES[config[FAMILY_KEY]]
        if name not in ("PreTrainedTokenizer", "PreTrainedTokenizerFast", "TokenizersBackend"):
            raise SentencePieceModelError(f"{folder / CONFIG_FILE} names tokenizer_class {name!r}; bertkit's "
                                          f"SentencePiece tokenizers are {', '.join(FAMILIES)}")
    kind = model_config.get("model_type")
    if kind in MODEL_TYPES:
        return MODEL_TYPES[kind]
    found = model_file(folder) if by_file_name else None
    if found is None:
        raise FileNotFoundError(f"{folder} holds no SentencePiece model ({', '.join(MODEL_FILES)}) and names no "
                                "SentencePiece tokenizer_class or model_type")
    return FAMILIES[BY_FILE_NAME.get(found.name, "AlbertTokenizer")]


def tokenizer_arguments(folder: Path, cls: type[SentencePieceTokenizer]) -> dict[str, Any]:
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
    for role in ROLES:
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
