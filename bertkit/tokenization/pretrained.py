"""What a model folder says about its tokenizer: ``vocab.txt`` or ``tokenizer.json``, plus ``tokenizer_config.json``.

The rules, in order:

1. The vocabulary comes from ``vocab.txt``, or from ``tokenizer.json`` when there is no vocab.txt (folders written
   by current transformers and sentence-transformers hold only tokenizer.json).
2. Settings start from tokenizer.json's pipeline (when there is one) or BertTokenizer's defaults, and the explicit
   settings of ``tokenizer_config.json`` override them, as transformers' BertTokenizer does. An override that
   contradicts tokenizer.json is logged: the ``tokenizers`` library alone would follow tokenizer.json.
3. With both vocab.txt and tokenizer.json, vocab.txt is used as before, but the two must describe one tokenizer
   (the same vocabulary, the same settings); if they do not, loading fails and says where they differ, since
   transformers would read one file and bertkit the other.
4. bertkit pads and truncates on the right; a tokenizer_config.json (or tokenizer.json) asking for the left is
   refused rather than followed on the right.
5. A pair truncated to an odd budget: tokenizer_config.json's ``pair_truncation`` (bertkit writes it), else the
   Rust ``tokenizers`` rule for a folder with tokenizer.json or saved by transformers (what transformers' fast
   tokenizer, and so a model trained there, does), else google-research/bert's reference rule
   (:func:`pair_truncation_rule`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from pathlib import Path
from typing import Any

from .tokenizer_json import TOKENIZER_JSON, TokenizerJson, UnsupportedTokenizer, read_tokenizer_json
from .vocab import load_vocab

logger = logging.getLogger(__name__)

VOCAB_FILE = "vocab.txt"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
CONFIG_KEYS = ("do_lower_case", "do_basic_tokenize", "never_split", "tokenize_chinese_chars", "strip_accents",
               "max_input_chars_per_word")
# The settings tokenizer.json can state, compared between the files; mask_token is not among them (no role there).
PIPELINE_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars", "max_input_chars_per_word",
                 "unk_token", "sep_token", "pad_token", "cls_token")


def read_config(folder: Path) -> dict[str, Any]:
    """``tokenizer_config.json`` as a dict ({} when the folder has none)."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a JSON object")
    return config


def config_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The BertTokenizer arguments a tokenizer_config.json sets explicitly."""
    settings = {k: config[k] for k in CONFIG_KEYS if config.get(k) is not None}
    settings.update({k: token_text(config[k]) for k in SPECIAL_TOKEN_NAMES if config.get(k)})
    max_length = config.get("model_max_length")
    if isinstance(max_length, int) and max_length < 1_000_000:  # transformers writes 1e30 for "none"
        settings["model_max_length"] = max_length
    return settings


def check_sides(config: dict[str, Any], folder: Path) -> None:
    """bertkit pads and truncates on the right; a config asking for the left would get other ids silently."""
    for key in ("padding_side", "truncation_side"):
        if config.get(key, "right") != "right":
            raise UnsupportedTokenizer(f"{folder / CONFIG_FILE} sets {key}={config[key]!r}; bertkit's BertTokenizer "
                                       "pads and truncates on the right only")


def token_text(value: Any) -> str:
    """Special tokens in tokenizer_config.json are strings or AddedToken dicts with a "content" field."""
    return value["content"] if isinstance(value, dict) else str(value)


def tokenizer_class(pre_tokenizer: str | None, default: type) -> type:
    """The tokenizer class a config's ``pre_tokenizer`` asks for (the word-first Chinese one for "jieba")."""
    if pre_tokenizer is None or pre_tokenizer == default.pre_tokenizer:
        return default
    # a variant names itself by its class attribute, so this module need not import it (bertkit.tokenization does)
    root = next(c for c in reversed(default.__mro__) if "pre_tokenizer" in vars(c))
    variants = {cls.pre_tokenizer: cls for cls in _subclasses(root) if cls.pre_tokenizer}
    if pre_tokenizer in variants:
        return variants[pre_tokenizer]
    known = ", ".join(repr(name) for name in sorted(variants))
    raise ValueError(f"tokenizer_config.json names an unknown pre_tokenizer {pre_tokenizer!r} (known: {known})")


def _subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, at any depth."""
    return [sub for child in cls.__subclasses__() for sub in (child, *_subclasses(child))]


def _defaults(cls: type) -> dict[str, Any]:
    """The keyword defaults of ``cls.__init__``: what a setting is when no file states it."""
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _effective(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The pipeline settings as the tokenizer will apply them (``strip_accents=None`` resolved)."""
    out = {key: settings.get(key, defaults.get(key)) for key in PIPELINE_KEYS}
    if out["strip_accents"] is None:
        out["strip_accents"] = out["do_lower_case"]
    return out


def check_special_tokens(described: TokenizerJson, settings: dict[str, Any], defaults: dict[str, Any],
                         path: Path) -> None:
    """Special tokens of tokenizer.json outside BertTokenizer's five would be split out whole there, not here."""
    ours = {settings.get(name, defaults[name]) for name in SPECIAL_TOKEN_NAMES}
    extra = [token for token in described.special_tokens if token not in ours]
    if extra:
        raise UnsupportedTokenizer(f"{path} has special tokens {extra} beyond BERT's five ({sorted(ours)}); bertkit's "
                                   "BertTokenizer keeps only those five whole and would tokenize the others")


def _log_overrides(described: TokenizerJson, explicit: dict[str, Any], defaults: dict[str, Any],
                   folder: Path) -> None:
    """Say where tokenizer_config.json overrides tokenizer.json (transformers follows the config, tokenizers not)."""
    from_json = _effective(described.settings, defaults)
    merged = _effective({**described.settings, **explicit}, defaults)
    for key in PIPELINE_KEYS:
        if merged[key] != from_json[key]:
            logger.warning("%s: %s sets %s=%r, overriding %s's %r (as transformers does)", folder, CONFIG_FILE, key,
                           merged[key], TOKENIZER_JSON, from_json[key])


def check_agreement(folder: Path, vocab: dict[str, int], described: TokenizerJson, explicit: dict[str, Any],
                    defaults: dict[str, Any]) -> None:
    """vocab.txt (+ tokenizer_config.json) and tokenizer.json must describe the same tokenizer."""
    fix = f"fix the folder, or delete the stale file ({TOKENIZER_JSON} if {VOCAB_FILE} is right)"
    if vocab != described.vocab:
        differing = sorted(set(vocab.items()) ^ set(described.vocab.items()), key=lambda item: item[1])
        raise ValueError(f"{folder}: {VOCAB_FILE} ({len(vocab)} tokens) and {TOKENIZER_JSON} "
                         f"({len(described.vocab)} tokens) hold different vocabularies (first difference: "
                         f"{differing[0]}); {fix}")
    from_vocab_txt = _effective(explicit, defaults)
    from_json = _effective({**described.settings, **explicit}, defaults)
    for key in PIPELINE_KEYS:
        if from_vocab_txt[key] != from_json[key]:
            raise ValueError(f"{folder}: {VOCAB_FILE} with {CONFIG_FILE} means {key}={from_vocab_txt[key]!r}, but "
                             f"{TOKENIZER_JSON} says {from_json[key]!r}; {fix}")


def pair_truncation_rule(folder: Path, config: dict[str, Any]) -> tuple[str, str]:
    """The ``longest_first`` rule for pairs this folder's model was most likely trained with, and why."""
    if config.get("pair_truncation") is not None:
        return config["pair_truncation"], f"{CONFIG_FILE} says so"
    if (folder / TOKENIZER_JSON).is_file():
        return "tokenizers", f"the folder has {TOKENIZER_JSON}, which transformers' fast tokenizer follows"
    if (folder / "special_tokens_map.json").is_file() or "added_tokens_decoder" in config:
        return "tokenizers", "the folder was saved by transformers, whose fast tokenizer is the default"
    return "reference", "a vocab.txt folder, as google-research/bert's checkpoints"


def tokenizer_arguments(folder: str | os.PathLike, default: type) -> tuple[type, dict[str, Any]]:
    """The tokenizer class and keyword arguments a folder describes (see the module's rules)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such model folder: {folder} (bertkit loads local folders, not hub names)")
    vocab_file, json_file = folder / VOCAB_FILE, folder / TOKENIZER_JSON
    if not vocab_file.is_file() and not json_file.is_file():
        raise FileNotFoundError(f"{folder} has no {VOCAB_FILE} and no {TOKENIZER_JSON} (bertkit reads BERT's "
                                "WordPiece vocabulary from either)")
    config = read_config(folder)
    check_sides(config, folder)
    cls = tokenizer_class(config.get("pre_tokenizer"), default)
    explicit = config_settings(config)
    explicit["pair_truncation"] = pair_truncation_rule(folder, config)[0]
    if not json_file.is_file():
        return cls, {"vocab_file": vocab_file, **explicit}
    if "strip_accents" in config:  # an explicit null ("follow lower-casing") overrides tokenizer.json too
        explicit["strip_accents"] = config["strip_accents"]
    described = read_tokenizer_json(json_file)
    defaults = _defaults(cls)
    settings = {**described.settings, **explicit}
    check_special_tokens(described, settings, defaults, json_file)
    if vocab_file.is_file():
        vocab = load_vocab(vocab_file)
        check_agreement(folder, vocab, described, explicit, defaults)
        return cls, {"vocab": vocab, **explicit}
    _log_overrides(described, explicit, defaults, folder)
    return cls, {"vocab": described.vocab, **settings}
