"""``AutoTokenizer.from_pretrained(folder)``: bertkit's tokenizer for whatever a local model folder holds.

The tokenizer files decide, not the model's architecture: bertkit trains RoBERTa- and ALBERT-shaped models with a
WordPiece vocabulary, so a ``config.json`` saying ``model_type: roberta`` beside a ``vocab.txt`` is a WordPiece
tokenizer. In order:

1. ``vocab.txt`` or ``tokenizer.json`` (WordPiece) → ``BertTokenizer.from_pretrained`` (the word-first Chinese
   subclass when tokenizer_config.json says ``"pre_tokenizer": "jieba"``); a tokenizer.json of another kind is
   refused by ``tokenizer_json.py`` with the kind named.
2. ``vocab.json`` + ``merges.txt`` → refused: byte-level BPE (GPT-2 / RoBERTa) is not in bertkit yet.
3. a SentencePiece model (``spiece.model``, ``sentencepiece.bpe.model``, ...) → refused: not in bertkit.
4. nothing of these → a clear error listing what was looked for.

``tokenizer_config.json``'s ``tokenizer_class`` is checked as well: one that tokenizes differently from BERT while
keeping a vocab.txt (BertJapanese's MeCab words, MPNet's ``<s>`` template, ...) is refused rather than imitated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .pretrained import CONFIG_FILE, VOCAB_FILE, read_config
from .tokenizer import BertTokenizer
from .tokenizer_json import TOKENIZER_JSON, WORDPIECE_ONLY, UnsupportedTokenizer

BPE_FILES = ("vocab.json", "merges.txt")
SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model", "sentencepiece.model", "tokenizer.model")

# transformers' tokenizer classes that are BERT's WordPiece tokenizer under another name (or the generic class
# that follows tokenizer.json, which bertkit then reads).
BERT_CLASSES = {"BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "MobileBertTokenizer",
                "SqueezeBertTokenizer", "LayoutLMTokenizer", "ConvBertTokenizer", "LxmertTokenizer",
                "RetriBertTokenizer", "PreTrainedTokenizerFast", "TokenizersBackend"}
BYTE_LEVEL_BPE_CLASSES = {"GPT2Tokenizer", "RobertaTokenizer", "BartTokenizer", "LongformerTokenizer",
                          "DebertaTokenizer", "LEDTokenizer", "BlenderbotTokenizer", "CodeGenTokenizer",
                          "GPTNeoXTokenizer", "Qwen2Tokenizer"}
SENTENCEPIECE_CLASSES = {"AlbertTokenizer", "XLMRobertaTokenizer", "CamembertTokenizer", "T5Tokenizer",
                         "XLNetTokenizer", "DebertaV2Tokenizer", "LlamaTokenizer", "BigBirdTokenizer",
                         "MBartTokenizer", "MarianTokenizer", "PegasusTokenizer", "BertGenerationTokenizer"}


def model_type(folder: Path) -> str | None:
    """``config.json``'s ``model_type`` (bert, roberta, albert, ...), for messages; None when absent or unreadable."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config.get("model_type") if isinstance(config, dict) else None


def declared_class(folder: Path) -> str | None:
    """The tokenizer class the folder names (tokenizer_config.json, else config.json), without "Fast"."""
    name = read_config(folder).get("tokenizer_class")
    if name is None and (folder / "config.json").is_file():
        try:
            name = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("tokenizer_class")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            name = None
    return name.removesuffix("Fast") if isinstance(name, str) else None


def _for_model(folder: Path) -> str:
    kind = model_type(folder)
    return f" (config.json: model_type {kind!r})" if kind else ""


def check_declared_class(folder: Path) -> None:
    """A WordPiece folder whose tokenizer_class is not BERT's would tokenize differently there: refuse it."""
    name = declared_class(folder)
    if name is None or name in BERT_CLASSES:
        return
    where = f"{folder / CONFIG_FILE} names tokenizer_class {name!r}"
    if name in BYTE_LEVEL_BPE_CLASSES:
        raise UnsupportedTokenizer(f"{where}, a byte-level BPE tokenizer (GPT-2 / RoBERTa); {WORDPIECE_ONLY} — "
                                   "byte-level BPE comes with the GPT issue")
    if name in SENTENCEPIECE_CLASSES:
        raise UnsupportedTokenizer(f"{where}, a SentencePiece tokenizer; {WORDPIECE_ONLY} — SentencePiece tokenizers "
                                   "are not in bertkit")
    raise UnsupportedTokenizer(f"{where}, which bertkit does not reproduce (it is BERT's WordPiece tokenizer only: "
                               f"{', '.join(sorted(BERT_CLASSES - {'TokenizersBackend'}))}); it may split words or "
                               "add special tokens differently")


def refuse_other_files(folder: Path) -> None:
    """Raise the error that says what the folder holds instead of a WordPiece vocabulary."""
    if all((folder / name).is_file() for name in BPE_FILES):
        raise UnsupportedTokenizer(f"{folder} holds a byte-level BPE tokenizer (vocab.json + merges.txt, GPT-2 / "
                                   f"RoBERTa){_for_model(folder)}; {WORDPIECE_ONLY} — byte-level BPE comes with the "
                                   "GPT issue")
    for name in SENTENCEPIECE_FILES:
        if (folder / name).is_file():
            raise UnsupportedTokenizer(f"{folder} holds a SentencePiece model ({name}){_for_model(folder)}; "
                                       f"{WORDPIECE_ONLY} — SentencePiece tokenizers are not in bertkit")
    state = "is empty" if not any(folder.iterdir()) else "holds no tokenizer files"
    raise FileNotFoundError(f"{folder} {state}{_for_model(folder)}: bertkit looks for {VOCAB_FILE} or "
                            f"{TOKENIZER_JSON} (WordPiece); it recognises and refuses vocab.json + merges.txt "
                            "(byte-level BPE) and SentencePiece .model files")


class AutoTokenizer:
    """Picks bertkit's tokenizer from a local folder's files (transformers' ``AutoTokenizer``, folders only)."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated: use AutoTokenizer.from_pretrained(folder)")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> BertTokenizer:
        """The folder's WordPiece tokenizer, or a clear error saying what it holds instead."""
        folder = Path(folder)
        if not folder.exists():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file; AutoTokenizer.from_pretrained takes a model folder")
        if not (folder / VOCAB_FILE).is_file() and not (folder / TOKENIZER_JSON).is_file():
            refuse_other_files(folder)
        check_declared_class(folder)
        return BertTokenizer.from_pretrained(folder, **overrides)
