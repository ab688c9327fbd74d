"""A ``tokenizer.json`` whose model is Unigram (what transformers 5 saves for ALBERT, XLNet, T5, XLM-R, ...), read as
the SentencePiece model it was converted from.

The parts bertkit follows: ``model`` (Unigram: ``vocab`` as [piece, score] pairs at their final ids, ``unk_id``,
``byte_fallback``); ``normalizer`` (``Precompiled``: SentencePiece's charsmap, base64; around it ``Replace`` ``\\`\\```
/ ``''``, ``NFKD`` + ``StripAccents``, ``Lowercase`` — ALBERT / XLNet's preparation — and DeBERTa's ``Strip`` /
``Replace`` of runs of spaces); ``pre_tokenizer`` (``WhitespaceSplit`` and ``Metaspace`` with ``▁``, DeBERTa's
``Punctuation`` isolated: ``split_by_punct``); and
``added_tokens`` (special tokens become control pieces). The template around a text is the family's (its
tokenizer_class), as in transformers. Any other part is refused with its name.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from .sentencepiece_model import BYTE, CONTROL, NORMAL, UNKNOWN, ModelProto, Piece
from .tokenizer_json import UnsupportedTokenizer

NORMALIZERS = {"Sequence", "Precompiled", "Replace", "NFKD", "StripAccents", "Lowercase", "Strip", "NFC"}
PRE_TOKENIZERS = {"Sequence", "WhitespaceSplit", "Metaspace", "Punctuation"}
_BYTE = re.compile(r"<0x[0-9A-F]{2}>")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def is_unigram_json(path: Path) -> bool:
    """Whether a tokenizer.json holds a Unigram model."""
    try:
        return read_json(path).get("model", {}).get("type") == "Unigram"
    except (ValueError, AttributeError):
        return False


def _flatten(part: dict | None, key: str) -> list[dict]:
    """A normaliser or pre-tokenizer as its list of steps (a Sequence opened up)."""
    if not part:
        return []
    if part.get("type") == "Sequence":
        return [step for inner in part.get(key, []) for step in _flatten(inner, key)]
    return [part]


def read_unigram_json(path: Path) -> tuple[ModelProto, dict[str, Any]]:
    """The SentencePiece model a Unigram tokenizer.json describes, and the preparation settings it implies."""
    data = read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise UnsupportedTokenizer(f"{path}: model.type is {model.get('type')!r}, not Unigram")
    vocab, unk_id = model.get("vocab"), model.get("unk_id")
    if not isinstance(vocab, list) or not vocab or not isinstance(unk_id, int) or not 0 <= unk_id < len(vocab):
        raise UnsupportedTokenizer(f"{path}: model.vocab / model.unk_id are not a Unigram vocabulary")
    normalizers = _flatten(data.get("normalizer"), "normalizers")
    for step in normalizers:
        if step.get("type") not in NORMALIZERS:
            raise UnsupportedTokenizer(f"{path}: normalizer {step.get('type')!r} is not one bertkit follows "
                                       f"({', '.join(sorted(NORMALIZERS))})")
    pre_tokenizers = _flatten(data.get("pre_tokenizer"), "pretokenizers")
    for step in pre_tokenizers:
        if step.get("type") not in PRE_TOKENIZERS or step.get("replacement", "\u2581") != "\u2581" or \
                step.get("behavior", "isolated").lower() != "isolated":
            raise UnsupportedTokenizer(f"{path}: pre_tokenizer {step.get('type')!r} ({step}) is not one bertkit "
                                       "follows (WhitespaceSplit, Metaspace with ▁, Punctuation isolated)")
    metaspace = next((s for s in pre_tokenizers if s.get("type") == "Metaspace"), {})
    charsmap = b""
    for step in normalizers:
        if step.get("type") == "Precompiled" and step.get("precompiled_charsmap"):
            charsmap = base64.b64decode(step["precompiled_charsmap"])
    specials = {t.get("content") for t in data.get("added_tokens") or [] if t.get("special")}
    byte_fallback = bool(model.get("byte_fallback"))
    pieces = []
    for i, entry in enumerate(vocab):
        piece, score = entry
        kind = UNKNOWN if i == unk_id else CONTROL if piece in specials else NORMAL
        if kind == NORMAL and byte_fallback and _BYTE.fullmatch(piece):
            kind = BYTE
        pieces.append(Piece(piece, float(score), kind))
    proto = ModelProto(pieces=pieces)
    proto.trainer_spec = {"model_type": 1, "vocab_size": len(pieces), "byte_fallback": byte_fallback,
                          "unk_id": unk_id, "treat_whitespace_as_suffix": False, "unk_surface": " \u2047 "}
    proto.normalizer_spec = {"name": "user_defined" if charsmap else "identity", "precompiled_charsmap": charsmap,
                             "add_dummy_prefix": metaspace.get("prepend_scheme", "always") != "never",
                             "remove_extra_whitespaces": True, "escape_whitespaces": True}
    types = {step.get("type") for step in normalizers}
    settings = {"do_lower_case": "Lowercase" in types, "keep_accents": "StripAccents" not in types,
                "split_by_punct": any(step.get("type") == "Punctuation" for step in pre_tokenizers)}
    return proto, settings


def _template(tokenizer, parts: tuple[str, ...]) -> list[dict]:
    """A family template as TemplateProcessing steps (segment ids as ``build_inputs`` gives them)."""
    steps, segment = [], tokenizer.segment_ids[0]
    for k, part in enumerate(parts):
        if part in ("A", "B"):
            segment = tokenizer.segment_ids[part == "B"]
            steps.append({"Sequence": {"id": part, "type_id": segment}})
        else:
            last = k == len(parts) - 1 and tokenizer.last_special_segment is not None
            type_id = tokenizer.last_special_segment if last else segment
            steps.append({"SpecialToken": {"id": getattr(tokenizer, part), "type_id": type_id}})
    return steps


def _preparation(tokenizer) -> list[dict]:
    """The family's text preparation as normaliser steps (ALBERT / XLNet: quotes, accents, lower case)."""
    steps: list[dict] = []
    if "keep_accents" in tokenizer.settings:
        steps += [{"type": "Replace", "pattern": {"String": q}, "content": '"'} for q in ("``", "''")]
        if not tokenizer.settings["keep_accents"]:
            steps += [{"type": "NFKD"}, {"type": "StripAccents"}]
    if tokenizer.settings.get("do_lower_case"):
        steps.append({"type": "Lowercase"})
    charsmap = tokenizer.sp.proto.normalizer_spec.get("precompiled_charsmap") or b""
    if charsmap:
        steps.append({"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()})
    return steps


def _document(tokenizer, steps: list[dict], pre_tokenizer: dict, decoder: dict, model: dict) -> dict:
    """A tokenizer.json around a model: special tokens, normaliser, pre-tokenizer, the family's template."""
    specials = [t for t in tokenizer.all_special_tokens if t in tokenizer.vocab]
    roles = {getattr(tokenizer, part) for part in tokenizer.pair if part not in ("A", "B")}
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": tokenizer.vocab[t], "content": t, "single_word": False,
                          "lstrip": t in tokenizer.lstrip_tokens, "rstrip": False, "normalized": False,
                          "special": True} for t in sorted(specials, key=tokenizer.vocab.get)],
        "normalizer": None if not steps else steps[0] if len(steps) == 1 else {"type": "Sequence",
                                                                              "normalizers": steps},
        "pre_tokenizer": pre_tokenizer,
        "post_processor": {"type": "TemplateProcessing", "single": _template(tokenizer, tokenizer.single),
                           "pair": _template(tokenizer, tokenizer.pair),
                           "special_tokens": {t: {"id": t, "ids": [tokenizer.vocab[t]], "tokens": [t]}
                                              for t in sorted(roles)}},
        "decoder": decoder,
        "model": model,
    }


def sentencepiece_json(tokenizer) -> dict:
    """The tokenizer.json of a family tokenizer: Unigram or BPE, as its SentencePiece model is."""
    return unigram_json(tokenizer) if tokenizer.sp.model_type == "unigram" else bpe_json(tokenizer)


def unigram_json(tokenizer) -> dict:
    """A family tokenizer as the Unigram tokenizer.json transformers 5 would write for it (byte fallback kept)."""
    sp = tokenizer.sp
    scores = {tid: sp.scores[spm] for spm, tid in enumerate(tokenizer._spm_ids) if sp.types[spm] != UNKNOWN}
    vocab = [[tokenizer.ids_to_tokens[i], float(scores.get(i, 0.0))] for i in range(len(tokenizer.vocab))]
    steps = _preparation(tokenizer)
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True}
    if tokenizer.space_in_offsets:  # DeBERTa-v2: no whitespace split, runs of spaces folded by the normaliser
        steps += [{"type": "Strip", "strip_left": False, "strip_right": True},
                  {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]
        punctuation = [{"type": "Punctuation", "behavior": "Isolated"}] if tokenizer.settings["split_by_punct"] else []
        pre_tokenizer = {"type": "Sequence", "pretokenizers": [*punctuation, metaspace]}
    else:
        pre_tokenizer = {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace]}
    model = {"type": "Unigram", "unk_id": tokenizer.unk_token_id, "vocab": vocab,
             "byte_fallback": bool(sp.byte_fallback)}
    return _document(tokenizer, steps, pre_tokenizer, metaspace, model)


def bpe_merges(sp) -> list[list[str]]:
    """SentencePiece BPE's merge order as a merges list: every split of a normal piece into two normal pieces,
    the highest-scoring merged piece first (ties in id order), as tokenizers' ``SentencePieceExtractor``."""
    normal = {p: i for i, (p, t) in enumerate(zip(sp.pieces, sp.types, strict=True)) if t == NORMAL}
    merges = []
    for piece, i in normal.items():
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in normal and piece[k:] in normal]
        merges += [(sp.scores[i], normal[left], normal[right], left, right) for left, right in splits]
    merges.sort(key=lambda m: (-m[0], m[1], m[2]))
    return [[left, right] for *_, left, right in merges]


def bpe_json(tokenizer) -> dict:
    """A family tokenizer whose SentencePiece model is BPE as a tokenizer.json the Rust library encodes alike:
    BPE with the merges of ``bpe_merges``, unknown characters fused (or spelled in bytes with byte fallback), the
    normaliser's whitespace rules as Replace steps, and Metaspace."""
    sp, spec = tokenizer.sp, tokenizer.sp.proto.normalizer_spec
    steps = _preparation(tokenizer)
    if spec.get("remove_extra_whitespaces", True):  # only U+0020, as SentencePiece (not every Unicode space)
        steps += [{"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
                  {"type": "Replace", "pattern": {"Regex": "\\A | \\z"}, "content": ""}]
    # split at ▁ only when no piece crosses a word's start, as bertkit's own word-by-word segmentation
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "split": bool(sp._by_word),
                 "prepend_scheme": "always" if spec.get("add_dummy_prefix", True) else "never"}
    decoder = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    model = {"type": "BPE", "dropout": None, "unk_token": tokenizer.unk_token, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": bool(sp.byte_fallback),
             "ignore_merges": False, "vocab": {tokenizer.ids_to_tokens[i]: i for i in range(len(tokenizer.vocab))},
             "merges": bpe_merges(sp)}
    return _document(tokenizer, steps, metaspace, decoder, model)
