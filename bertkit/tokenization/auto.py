"""``AutoTokenizer.from_pretrained(folder)``: bertkit's tokenizer for whatever a local model folder holds.

The tokenizer files decide, not the model's architecture: bertkit trains RoBERTa- and ALBERT-shaped models with a
WordPiece vocabulary, so a ``config.json`` saying ``model_type: roberta`` beside a ``vocab.txt`` is a WordPiece
tokenizer. In order:

1. ``vocab.txt`` → ``BertTokenizer.from_pretrained`` (the word-first Chinese subclass when tokenizer_config.json says
   ``"pre_tokenizer": "jieba"``).
2. ``vocab.json`` + ``merges.txt``, or a ``tokenizer.json`` whose model is byte-level BPE → ``GPT2Tokenizer``, or
   ``RobertaTokenizer`` (``<s> A </s>``) when tokenizer_config.json / config.json name RoBERTa (see
   ``byte_level_class``).
3. any other ``tokenizer.json`` → ``BertTokenizer`` (WordPiece); one of another kind is refused by
   ``tokenizer_json.py`` with the kind named.
4. a SentencePiece model (``spiece.model``, ``sentencepiece.bpe.model``, ``spm.model``, ...) or a Unigram
   tokenizer.json, and no vocab.txt →
   that family's tokenizer (ALBERT, XLNet, T5, XLM-R, CamemBERT, DeBERTa-v2; see ``sp_files.family_of``).
5. nothing of these → a clear error listing what was looked for.

``tokenizer_config.json``'s ``tokenizer_class`` is checked as well: one that tokenizes differently from the chosen
tokenizer (BertJapanese's MeCab words beside a vocab.txt, Qwen2's pattern beside vocab.json, ...) is refused rather
than imitated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .byte_bpe_json import is_byte_level_json, read_byte_level_json
from .gpt2 import GPT2Tokenizer
from .pretrained import CONFIG_FILE, VOCAB_FILE, read_config
from .roberta import RobertaTokenizer
from .sp_tokenizer_json import is_unigram_json
from .tokenizer import BertTokenizer
from .tokenizer_json import TOKENIZER_JSON, WORDPIECE_ONLY, UnsupportedTokenizer

BPE_FILES = ("vocab.json", "merges.txt")
SENTENCEPIECE_FILES = ("spiece.model", "sentencepiece.bpe.model", "spm.model", "sentencepiece.model", "tokenizer.model")

# transformers' tokenizer classes that are BERT's WordPiece tokenizer under another name (or the generic class
# that follows tokenizer.json, which bertkit then reads).
BERT_CLASSES = {"BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "MobileBertTokenizer",
                "SqueezeBertTokenizer", "LayoutLMTokenizer", "ConvBertTokenizer", "LxmertTokenizer",
                "RetriBertTokenizer", "PreTrainedTokenizerFast", "TokenizersBackend"}
BYTE_LEVEL_BPE_CLASSES = {"GPT2Tokenizer", "RobertaTokenizer", "BartTokenizer", "LongformerTokenizer",
                          "DebertaTokenizer", "LEDTokenizer", "BlenderbotTokenizer", "CodeGenTokenizer",
                          "GPTNeoXTokenizer", "Qwen2Tokenizer"}
# The byte-level BPE tokenizers bertkit reproduces, by the tokenizer_class or model_type a folder names.
BYTE_LEVEL_TOKENIZERS: dict[str, type[GPT2Tokenizer]] = {"GPT2Tokenizer": GPT2Tokenizer,
                                                         "RobertaTokenizer": RobertaTokenizer}
BYTE_LEVEL_MODEL_TYPES: dict[str, type[GPT2Tokenizer]] = {"gpt2": GPT2Tokenizer, "roberta": RobertaTokenizer}
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
        raise UnsupportedTokenizer(f"{where}, a byte-level BPE tokenizer (GPT-2 / RoBERTa), but the folder holds "
                                   "a WordPiece vocabulary; bertkit reads byte-level BPE from vocab.json + merges.txt "
                                   "or a byte-level tokenizer.json")
    if name in SENTENCEPIECE_CLASSES:
        raise UnsupportedTokenizer(f"{where}, a SentencePiece tokenizer; {WORDPIECE_ONLY} — SentencePiece tokenizers "
                                   "are not in bertkit")
    raise UnsupportedTokenizer(f"{where}, which bertkit does not reproduce (it is BERT's WordPiece tokenizer only: "
                               f"{', '.join(sorted(BERT_CLASSES - {'TokenizersBackend'}))}); it may split words or "
                               "add special tokens differently")


def byte_level_class(folder: Path) -> type[GPT2Tokenizer]:
    """GPT2Tokenizer or RobertaTokenizer, by the folder's ``tokenizer_class``, else its ``model_type``, else its
    byte-level tokenizer.json's post-processor, else GPT-2.

    A folder naming another byte-level tokenizer (BART, CodeGen, Qwen2, ...) is refused: their special tokens or
    word patterns differ, and bertkit checks only GPT-2's and RoBERTa's against transformers.
    """
    name = declared_class(folder)
    if name is not None and name not in ("PreTrainedTokenizer", "TokenizersBackend"):
        if name not in BYTE_LEVEL_TOKENIZERS:
            raise UnsupportedTokenizer(f"{folder / CONFIG_FILE} names tokenizer_class {name!r}; bertkit's byte-level "
                                       f"BPE reproduces {' and '.join(BYTE_LEVEL_TOKENIZERS)} only")
        return BYTE_LEVEL_TOKENIZERS[name]
    kind = model_type(folder)
    if kind in BYTE_LEVEL_MODEL_TYPES:
        return BYTE_LEVEL_MODEL_TYPES[kind]
    if (folder / TOKENIZER_JSON).is_file() and is_byte_level_json(folder / TOKENIZER_JSON):
        return BYTE_LEVEL_TOKENIZERS[read_byte_level_json(folder / TOKENIZER_JSON)[0]]  # by its post-processor
    return GPT2Tokenizer


def has_byte_level_files(folder: Path) -> bool:
    """Whether the folder's tokenizer is byte-level BPE: vocab.json + merges.txt, or such a tokenizer.json."""
    if (folder / VOCAB_FILE).is_file():
        return False
    if all((folder / name).is_file() for name in BPE_FILES):
        return True
    return (folder / TOKENIZER_JSON).is_file() and is_byte_level_json(folder / TOKENIZER_JSON)


def refuse_other_files(folder: Path) -> None:
    """Raise the error that says what the folder holds instead of a WordPiece vocabulary."""
    if (folder / "vocab.json").is_file() and not (folder / "merges.txt").is_file():
        raise FileNotFoundError(f"{folder} holds vocab.json but no merges.txt{_for_model(folder)}: a byte-level BPE "
                                "tokenizer (GPT-2 / RoBERTa) needs both")
    for name in SENTENCEPIECE_FILES:
        if (folder / name).is_file():
            raise UnsupportedTokenizer(f"{folder} holds a SentencePiece model ({name}){_for_model(folder)}; "
                                       f"{WORDPIECE_ONLY} — SentencePiece tokenizers are not in bertkit")
    state = "is empty" if not any(folder.iterdir()) else "holds no tokenizer files"
    raise FileNotFoundError(f"{folder} {state}{_for_model(folder)}: bertkit looks for {VOCAB_FILE} or "
                            f"{TOKENIZER_JSON} (WordPiece), vocab.json + merges.txt (byte-level BPE); it recognises "
                            "and refuses SentencePiece .model files")


class AutoTokenizer:
    """Picks bertkit's tokenizer from a local folder's files (transformers' ``AutoTokenizer``, folders only)."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated: use AutoTokenizer.from_pretrained(folder)")

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> Any:
        """The folder's WordPiece, byte-level BPE or SentencePiece tokenizer, or a clear error saying what it holds
        instead."""
        folder = Path(folder)
        if not folder.exists():
            raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file; AutoTokenizer.from_pretrained takes a model folder")
        if has_byte_level_files(folder):
            return byte_level_class(folder).from_pretrained(folder, **overrides)
        from .sp_files import declares_family, family_of  # ALBERT, XLNet, T5, XLM-R, CamemBERT, DeBERTa-v2

        # a Unigram tokenizer.json is read when the folder says which family's template goes around it
        unigram_json = (folder / TOKENIZER_JSON).is_file() and is_unigram_json(folder / TOKENIZER_JSON)
        if not (folder / VOCAB_FILE).is_file() and ((unigram_json and declares_family(folder)) or any(
                (folder / n).is_file() for n in SENTENCEPIECE_FILES)):

            return family_of(folder).from_pretrained(folder, **overrides)
        if not (folder / VOCAB_FILE).is_file() and not (folder / TOKENIZER_JSON).is_file():
            refuse_other_files(folder)
        check_declared_class(folder)
        return BertTokenizer.from_pretrained(folder, **overrides)
