"""Which SentencePiece tokenizer family a model folder holds (its arguments: ``sp_folder.py``).

A folder holds one SentencePiece model (``spiece.model``, ``sentencepiece.bpe.model``, ``spm.model``, ...). The
family is the one ``tokenizer_config.json`` (else ``config.json``) names by ``tokenizer_class``, else the one its
``model_type`` implies, else the one the file's name implies (``spm.model``: DeBERTa-v2; ``sentencepiece.bpe.model``:
XLM-R; ``spiece.model``: ALBERT).
"""

from __future__ import annotations

import json
from pathlib import Path

from .pretrained import CONFIG_FILE, read_config
from .sentencepiece_model import SentencePieceModelError
from .sp_families import FAMILIES, MODEL_TYPES
from .sp_folder import FAMILY_KEY, MODEL_FILES, model_file
from .sp_tokenizer import SentencePieceTokenizer

BY_FILE_NAME = {"spm.model": "DebertaV2Tokenizer", "sentencepiece.bpe.model": "XLMRobertaTokenizer",
                "spiece.model": "AlbertTokenizer", "sentencepiece.model": "AlbertTokenizer"}


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
