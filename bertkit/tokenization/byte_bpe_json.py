"""A byte-level BPE ``tokenizer.json`` (GPT-2 / RoBERTa, as the ``tokenizers`` library saves it) → tokenizer arguments.

The pipeline bertkit reproduces, one function per stage:

1. ``normalizer``: none (byte-level BPE encodes the text as it is);
2. ``pre_tokenizer``: ``ByteLevel`` with GPT-2's pattern (``use_regex``), its ``add_prefix_space`` kept;
3. ``model``: ``BPE`` with its vocabulary and merges, no dropout, no word prefix or suffix, no byte fallback;
4. ``post_processor``: ``RobertaProcessing`` (→ ``RobertaTokenizer``), or none / ``ByteLevel`` (→ ``GPT2Tokenizer``);
5. ``added_tokens``: special tokens in the vocabulary, each matched whole in the raw text, optionally eating the
   whitespace on its left or right (``lstrip`` / ``rstrip``, as roberta-base's ``<mask>``).

Anything else is refused with ``UnsupportedTokenizer`` naming the piece, as ``tokenizer_json.py`` does for WordPiece.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .tokenizer_json import UnsupportedTokenizer, load_document, model_type, refuse

_steps_key = {"pre_tokenizer": "pretokenizers", "post_processor": "processors"}


def _steps(document: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    """The steps of one stage: a ``Sequence``'s members, the single step, or none."""
    spec = document.get(stage)
    if spec is None:
        return []
    if spec.get("type") == "Sequence":
        return list(spec.get(_steps_key[stage]) or [])
    return [spec]


def is_byte_level_json(path: str | os.PathLike) -> bool:
    """Whether a tokenizer.json holds a BPE model with a ByteLevel pre-tokenizer (False for an unreadable file)."""
    try:
        document = load_document(path)
        pre = [step.get("type") for step in _steps(document, "pre_tokenizer")]
        return isinstance(document["model"], dict) and model_type(document["model"]) == "BPE" and "ByteLevel" in pre
    except (ValueError, AttributeError, TypeError):
        return False


def read_byte_pre_tokenizer(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """A lone ``ByteLevel`` step with GPT-2's pattern → ``add_prefix_space``."""
    steps = _steps(document, "pre_tokenizer")
    if [step.get("type") for step in steps] != ["ByteLevel"]:
        raise refuse(path, f"pre-tokenizes with {' → '.join(str(s.get('type')) for s in steps)}; bertkit's byte-level "
                     "BPE reproduces a lone ByteLevel step (GPT-2's word pattern) only")
    if not steps[0].get("use_regex", True):
        raise refuse(path, "turns ByteLevel's use_regex off (no GPT-2 word split); bertkit always splits words")
    return {"add_prefix_space": bool(steps[0].get("add_prefix_space", False))}


def read_bpe_model(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """The BPE vocabulary and merges (``"a b"`` strings or ``["a", "b"]`` pairs), refusing options bertkit lacks."""
    if document.get("normalizer") is not None:
        raise refuse(path, f"normalizes text ({document['normalizer'].get('type')}); bertkit's byte-level BPE encodes "
                     "text as it is")
    model = document["model"]
    for option in ("dropout", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(option):
            raise refuse(path, f"sets the BPE option {option}={model[option]!r}, which bertkit does not reproduce")
    for option in ("byte_fallback", "ignore_merges"):
        if model.get(option):
            raise refuse(path, f"sets the BPE option {option}, which bertkit does not reproduce")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(type(i) is int for i in vocab.values()):
        raise ValueError(f"{path}: the BPE model's \"vocab\" must map tokens to integer ids")
    merges = []
    for rank, merge in enumerate(model.get("merges") or []):
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(p, str) and p for p in pair):
            raise ValueError(f"{path}: BPE merge {rank} is not two tokens: {merge!r:.80}")
        merges.append((pair[0], pair[1]))
    return {"vocab": vocab, "merges": merges}


def read_byte_post_processor(document: dict[str, Any], path: Path) -> tuple[str, dict[str, Any]]:
    """``RobertaProcessing`` → RobertaTokenizer with its ``<s>`` / ``</s>``; none or ``ByteLevel`` → GPT2Tokenizer."""
    steps = [step for step in _steps(document, "post_processor") if step.get("type") != "ByteLevel"]  # offsets only
    kinds = [str(step.get("type")) for step in steps]
    if not kinds:
        return "GPT2Tokenizer", {}
    if kinds == ["RobertaProcessing"]:
        (sep, _), (cls, _) = steps[0]["sep"], steps[0]["cls"]
        return "RobertaTokenizer", {"cls_token": cls, "bos_token": cls, "sep_token": sep, "eos_token": sep}
    raise refuse(path, f"has a post-processor bertkit's byte-level BPE cannot reproduce ({' → '.join(kinds)}); it "
                 "adds nothing (GPT-2) or RoBERTa's <s> A </s></s> B </s> (RobertaProcessing)")


def read_byte_added_tokens(document: dict[str, Any], vocab: dict[str, int], path: Path) -> dict[str, Any]:
    """Special tokens (added to ``vocab`` when past it) with the sides whose whitespace they eat."""
    specials, lstrip, rstrip = [], [], []
    taken = set(vocab.values())
    for entry in document.get("added_tokens") or []:
        token, index = entry.get("content"), entry.get("id")
        if token not in vocab and type(index) is int and index not in taken:
            vocab[token] = index  # a token added after training, with an id of its own past the model's
            taken.add(index)
        if vocab.get(token) != index:
            raise refuse(path, f"adds the token {token!r} with id {index}, but the BPE vocabulary "
                         f"{'gives it id ' + str(vocab[token]) if token in vocab else 'has that id already'}")
        if not entry.get("special", False) or entry.get("single_word"):
            raise refuse(path, f"adds the token {token!r} as a non-special or single-word token; bertkit keeps "
                         "special tokens whole wherever they are written, and nothing else")
        specials.append(token)
        if entry.get("lstrip"):
            lstrip.append(token)
        if entry.get("rstrip"):
            rstrip.append(token)
    return {"additional_special_tokens": specials, "lstrip_tokens": lstrip, "rstrip_tokens": rstrip}


def read_byte_level_json(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """The tokenizer class name and arguments a byte-level BPE tokenizer.json describes, or ``UnsupportedTokenizer``."""
    path = Path(path)
    document = load_document(path)
    try:
        if model_type(document["model"]) != "BPE":
            raise UnsupportedTokenizer(f"{path} is not a BPE tokenizer.json")
        arguments = read_bpe_model(document, path)
        arguments.update(read_byte_pre_tokenizer(document, path))
        name, roles = read_byte_post_processor(document, path)
        arguments.update(roles)
        arguments.update(read_byte_added_tokens(document, arguments["vocab"], path))
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path} is a malformed tokenizer.json ({type(error).__name__}: {error})") from None
    if name == "GPT2Tokenizer" and "<|endoftext|>" not in arguments["vocab"]:
        arguments.update(bos_token=None, eos_token=None, unk_token=None)  # no GPT-2 special token to add
    return name, arguments
