"""``tokenizer.json`` (the Hugging Face ``tokenizers`` serialisation) → the arguments of bertkit's BertTokenizer.

A tokenizer.json describes a pipeline, each stage a small JSON object:

1. ``normalizer``: BERT's (``BertNormalizer``: clean, pad CJK, lower-case, strip accents), alone or in a
   ``Sequence`` with steps that map onto it (``Lowercase``, ``NFC``). Not ``NFD`` + ``StripAccents``: that drops
   every combining mark (the Devanagari vowel signs too), where BERT's accent stripping drops non-spacing ones only.
2. ``pre_tokenizer``: ``BertPreTokenizer`` (split on whitespace, then isolate punctuation), or the same thing
   spelled as ``WhitespaceSplit`` + ``Punctuation``.
3. ``model``: ``WordPiece`` with its vocabulary, ``unk_token``, ``##`` prefix and ``max_input_chars_per_word``.
4. ``post_processor``: ``[CLS] A [SEP]`` and ``[CLS] A [SEP] B [SEP]`` with B's segment id 1
   (``BertProcessing`` or ``TemplateProcessing``).
5. ``added_tokens``: the special tokens, matched whole in the raw text.
6. ``decoder``, ``truncation``, ``padding``: checked (WordPiece decoder, right side, segment id 0 for padding).

Each stage is read by one function below. bertkit reproduces BERT's pipeline only, so anything else (a BPE,
Unigram or WordLevel model, another normalizer, pre-tokenizer or post-processor) is refused with an
``UnsupportedTokenizer`` naming the file and the piece: a tokenizer that silently splits text differently from the
one a model was trained with is worse than none.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .wordpiece import CONTINUATION

TOKENIZER_JSON = "tokenizer.json"
WORDPIECE_ONLY = "bertkit reads WordPiece only"


class UnsupportedTokenizer(ValueError):
    """A tokenizer bertkit cannot reproduce exactly: a BPE or SentencePiece model, or an unusual pipeline step."""


@dataclass
class TokenizerJson:
    """What a tokenizer.json says, in bertkit's terms."""

    vocab: dict[str, int]
    settings: dict[str, Any]  # BertTokenizer keyword arguments (normalisation, special tokens, word length)
    special_tokens: list[str] = field(default_factory=list)  # added tokens kept whole wherever they occur


def refuse(path: Path, problem: str) -> UnsupportedTokenizer:
    """The one error for a tokenizer.json bertkit cannot follow exactly."""
    return UnsupportedTokenizer(f"{path} {problem}")


def load_document(path: str | os.PathLike) -> dict[str, Any]:
    """Parse the file; anything but a JSON object is a clear error."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); expected a tokenizers tokenizer.json") from None
    if not isinstance(document, dict) or "model" not in document:
        raise ValueError(f"{path} is not a tokenizers tokenizer.json (no \"model\" entry)")
    return document


def _steps(spec: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """The members of a ``Sequence`` (under ``key``), or the single step itself."""
    if spec is None:
        return []
    if spec.get("type") == "Sequence":
        return list(spec.get(key) or [])
    return [spec]


def _kinds(steps: list[dict[str, Any]]) -> list[str]:
    return [str(step.get("type")) for step in steps]


# -- 3. the model ---------------------------------------------------------------------------------------------


def model_type(model: dict[str, Any]) -> str:
    """The model's kind; files written by old ``tokenizers`` versions have no "type", so infer it from the keys."""
    if "type" in model:
        return str(model["type"])
    if "merges" in model:
        return "BPE"
    if isinstance(model.get("vocab"), list):
        return "Unigram"
    if "continuing_subword_prefix" in model or "max_input_chars_per_word" in model:
        return "WordPiece"
    return "WordLevel"


def describe_non_wordpiece(kind: str, document: dict[str, Any]) -> str:
    """What a non-WordPiece model is, and where bertkit stands on it: the body of the refusal."""
    if kind == "BPE":
        pieces = _kinds(_steps(document.get("pre_tokenizer"), "pretokenizers"))
        pieces += _kinds(_steps(document.get("decoder"), "decoders"))
        if "ByteLevel" in pieces:
            return ("uses a byte-level BPE model (GPT-2 / RoBERTa); BertTokenizer reads WordPiece only — load it "
                    "with AutoTokenizer, which picks bertkit's GPT2Tokenizer / RobertaTokenizer")
        if "Metaspace" in pieces or document["model"].get("byte_fallback"):
            return (f"uses a SentencePiece-style BPE model (Llama / Mistral / XLM); {WORDPIECE_ONLY} — SentencePiece "
                    "tokenizers are not in bertkit")
        return f"uses a BPE model (character-level merges, not WordPiece); {WORDPIECE_ONLY}"
    if kind == "Unigram":
        return (f"uses a Unigram model (SentencePiece: ALBERT / T5 / XLNet / XLM-RoBERTa); {WORDPIECE_ONLY} — "
                "SentencePiece tokenizers are not in bertkit")
    if kind == "WordLevel":
        return f"uses a WordLevel model (whole words, no subword pieces); {WORDPIECE_ONLY}"
    return f"uses a model of unknown type {kind!r}; {WORDPIECE_ONLY}"


def read_model(document: dict[str, Any], path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The WordPiece vocabulary (token → id) and its settings: ``unk_token``, ``max_input_chars_per_word``."""
    model = document["model"]
    if not isinstance(model, dict):
        raise ValueError(f"{path}: \"model\" is not an object")
    kind = model_type(model)
    if kind != "WordPiece":
        raise refuse(path, describe_non_wordpiece(kind, document))
    prefix = model.get("continuing_subword_prefix", CONTINUATION)
    if prefix != CONTINUATION:
        raise refuse(path, f"marks word continuations with {prefix!r}; bertkit's WordPiece uses {CONTINUATION!r} only")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise ValueError(f"{path}: the WordPiece model has no vocabulary (\"vocab\" should map tokens to ids)")
    if not all(type(index) is int for index in vocab.values()) or len(set(vocab.values())) != len(vocab):
        raise ValueError(f"{path}: the WordPiece vocabulary must give each token its own integer id")
    settings = {"unk_token": model.get("unk_token", "[UNK]"),
                "max_input_chars_per_word": int(model.get("max_input_chars_per_word", 100))}
    return vocab, settings


# -- 1. the normalizer ----------------------------------------------------------------------------------------


def read_normalizer(spec: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    """BERT's normalizer, alone or with steps it can absorb → ``do_lower_case``, ``strip_accents``,
    ``tokenize_chinese_chars``.

    ``strip_accents: null`` means "strip when lower-casing", as in BertTokenizer. A ``Lowercase`` step turns
    lower-casing on; ``NFC`` changes nothing bertkit does not already do (it composes every word before
    lower-casing).
    """
    steps = _steps(spec, "normalizers")
    berts = [step for step in steps if step.get("type") == "BertNormalizer"]
    if len(berts) != 1:
        found = ", ".join(_kinds(steps)) or "none"
        raise refuse(path, f"has no BERT normalizer (found: {found}); bertkit's BertTokenizer always applies BERT's "
                     "(drop control characters, split CJK characters, optional lower-casing and accent stripping) "
                     "and would tokenize differently")
    bert = berts[0]
    if not bert.get("clean_text", True):
        raise refuse(path, "turns BERT's clean_text off (control characters kept); bertkit always removes them")
    lower = bool(bert.get("lowercase", True))
    strip = bert.get("strip_accents")
    chinese = bool(bert.get("handle_chinese_chars", True))
    if len(steps) == 1:
        return {"do_lower_case": lower, "strip_accents": strip, "tokenize_chinese_chars": chinese}
    strip = lower if strip is None else bool(strip)  # resolved before a later Lowercase changes its meaning
    kinds = _kinds(steps)
    for kind in kinds:
        if kind == "Lowercase":
            lower = True
        elif kind not in ("BertNormalizer", "NFC"):
            raise refuse(path, f"has a normalizer step {kind!r} (in {' → '.join(kinds)}) that bertkit's "
                         "BertTokenizer cannot reproduce; it follows BERT's normalizer, with Lowercase or NFC "
                         "around it")
    return {"do_lower_case": lower, "strip_accents": strip, "tokenize_chinese_chars": chinese}


# -- 2. the pre-tokenizer -------------------------------------------------------------------------------------


def read_pre_tokenizer(spec: dict[str, Any] | None, path: Path) -> None:
    """Accept BERT's pre-tokenizer: whitespace split, then every punctuation character a word of its own."""
    steps = _steps(spec, "pretokenizers")
    kinds = _kinds(steps)
    if kinds == ["BertPreTokenizer"]:
        return
    punctuation = [step for step in steps if step.get("type") == "Punctuation"]
    if sorted(kinds) == ["Punctuation", "WhitespaceSplit"] and punctuation[0].get("behavior", "Isolated") == "Isolated":
        return
    if not kinds:
        raise refuse(path, "has no pre-tokenizer, so WordPiece would see whole lines; bertkit's BertTokenizer "
                     "splits on whitespace and punctuation (BertPreTokenizer)")
    if "Whitespace" in kinds:
        raise refuse(path, "pre-tokenizes with 'Whitespace' (the pattern \\w+|[^\\w\\s]+, which also splits symbols "
                     "such as € or emoji off words); bertkit reproduces BertPreTokenizer (WhitespaceSplit + "
                     "Punctuation) only")
    raise refuse(path, f"has a pre-tokenizer bertkit's BertTokenizer cannot reproduce ({' → '.join(kinds)}); "
                 "it splits as BertPreTokenizer does (WhitespaceSplit + Punctuation)")


# -- 4. the post-processor ------------------------------------------------------------------------------------


def _template(pieces: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """A TemplateProcessing template as (kind, name, segment id) triples: ("SpecialToken", "[CLS]", 0)."""
    out = []
    for piece in pieces:
        kind, body = next(iter(piece.items()))
        out.append((kind, str(body.get("id")), int(body.get("type_id", 0))))
    return out


def _template_token(spec: dict[str, Any], name: str, vocab: dict[str, int], path: Path) -> str:
    """The single vocabulary token a template's special-token name stands for."""
    entry = (spec.get("special_tokens") or {}).get(name) or {}
    tokens, ids = entry.get("tokens", [name]), entry.get("ids")
    if len(tokens) != 1 or (ids is not None and list(ids) != [vocab.get(tokens[0])]):
        raise refuse(path, f"has a post-processor whose {name!r} is {tokens} with ids {ids}; bertkit needs it to be "
                     "one token with its vocabulary id")
    return tokens[0]


def read_post_processor(spec: dict[str, Any] | None, vocab: dict[str, int], path: Path) -> dict[str, str]:
    """``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` (B and its [SEP] in segment 1) → ``cls_token``, ``sep_token``."""
    steps = _steps(spec, "processors")
    kinds = _kinds(steps)
    if kinds == ["BertProcessing"]:
        pairs = [steps[0].get(name) for name in ("cls", "sep")]
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise ValueError(f"{path} is a malformed tokenizer.json (BertProcessing's cls and sep are [token, id])")
        (cls, cls_id), (sep, sep_id) = pairs
        if vocab.get(cls) != cls_id or vocab.get(sep) != sep_id:
            raise refuse(path, f"adds {cls!r} (id {cls_id}) and {sep!r} (id {sep_id}) but the vocabulary gives "
                         f"them ids {vocab.get(cls)} and {vocab.get(sep)}")
        return {"cls_token": cls, "sep_token": sep}
    if kinds == ["TemplateProcessing"]:
        spec = steps[0]
        single, pair = _template(spec.get("single", [])), _template(spec.get("pair", []))
        shape = [kind for kind, _, _ in single]
        if shape == ["SpecialToken", "Sequence", "SpecialToken"]:
            cls, sep = single[0][1], single[2][1]
            bert = [("SpecialToken", cls, 0), ("Sequence", "A", 0), ("SpecialToken", sep, 0)]
            if single == bert and pair == [*bert, ("Sequence", "B", 1), ("SpecialToken", sep, 1)]:
                return {"cls_token": _template_token(spec, cls, vocab, path),
                        "sep_token": _template_token(spec, sep, vocab, path)}
        raise refuse(path, "has a post-processor template other than BERT's ([CLS] $A [SEP], and "
                     "[CLS] $A [SEP] $B:1 [SEP]:1 for pairs); bertkit's BertTokenizer builds BERT's only")
    if not kinds:
        raise refuse(path, "has no post-processor, so the tokenizers library adds no [CLS] / [SEP]; bertkit's "
                     "BertTokenizer always adds BERT's [CLS] A [SEP] (B [SEP])")
    raise refuse(path, f"has a post-processor bertkit's BertTokenizer cannot reproduce ({' → '.join(kinds)}); "
                 "it builds BERT's [CLS] A [SEP] (B [SEP]) only")


# -- 5. added tokens ------------------------------------------------------------------------------------------


def read_added_tokens(entries: list[dict[str, Any]] | None, vocab: dict[str, int], path: Path) -> list[str]:
    """The special tokens, which must be vocabulary tokens matched exactly in the raw text (as BERT's are)."""
    special = []
    for entry in entries or []:
        token, index = entry.get("content"), entry.get("id")
        if vocab.get(token) != index:
            raise refuse(path, f"adds the token {token!r} with id {index}, but the WordPiece vocabulary "
                         f"{'gives it id ' + str(vocab[token]) if token in vocab else 'lacks it'}; bertkit does not "
                         "add tokens beyond the vocabulary")
        if not entry.get("special", False):
            raise refuse(path, f"adds the non-special token {token!r}, which the tokenizers library cuts out of any "
                         "text; bertkit's BertTokenizer keeps only its special tokens whole")
        flags = [name for name in ("single_word", "lstrip", "rstrip", "normalized") if entry.get(name)]
        if flags:
            raise refuse(path, f"matches the special token {token!r} with {', '.join(flags)}; bertkit matches "
                         "special tokens exactly as written in the raw text only")
        special.append(token)
    return special


# -- 6. decoder, truncation, padding --------------------------------------------------------------------------


def read_decoder(spec: dict[str, Any] | None, path: Path) -> None:
    """Accept WordPiece's decoder (glue ``##`` pieces) or none; decoding never changes token ids."""
    kinds = _kinds(_steps(spec, "decoders"))
    if kinds not in ([], ["WordPiece"]) or (spec and spec.get("prefix", CONTINUATION) != CONTINUATION):
        raise refuse(path, f"decodes with {' → '.join(kinds)}; bertkit decodes WordPiece ({CONTINUATION!r} pieces)")


def read_truncation(spec: dict[str, Any] | None, path: Path) -> None:
    """Accept right-side truncation.

    The length and strategy stored here are the backend's state from its last call; transformers, like bertkit,
    truncates only when a call asks to, to ``max_length`` or ``model_max_length``, so they are not settings.
    """
    if spec and spec.get("direction", "Right") != "Right":
        raise refuse(path, "truncates on the left; bertkit's BertTokenizer truncates on the right only")


def read_padding(spec: dict[str, Any] | None, vocab: dict[str, int], path: Path) -> dict[str, str]:
    """Right-side padding with segment id 0 → ``pad_token`` (the length, like truncation's, is call state)."""
    if not spec:
        return {}
    if spec.get("direction", "Right") != "Right":
        raise refuse(path, "pads on the left; bertkit's BertTokenizer pads on the right only")
    if spec.get("pad_type_id", 0) != 0:
        raise refuse(path, f"pads with segment id {spec['pad_type_id']}; bertkit pads with segment id 0")
    token = spec.get("pad_token")
    if token is None:
        return {}
    if vocab.get(token) != spec.get("pad_id", vocab.get(token)):
        raise refuse(path, f"pads with {token!r} as id {spec.get('pad_id')}, but the vocabulary gives it "
                     f"{vocab.get(token)}")
    return {"pad_token": token}


# -- all of it ------------------------------------------------------------------------------------------------


def read_tokenizer_json(path: str | os.PathLike) -> TokenizerJson:
    """Read a tokenizer.json into bertkit's terms, or refuse it with the reason (``UnsupportedTokenizer``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such tokenizer file: {path}")
    document = load_document(path)
    try:
        vocab, settings = read_model(document, path)
        settings.update(read_normalizer(document.get("normalizer"), path))
        read_pre_tokenizer(document.get("pre_tokenizer"), path)
        settings.update(read_post_processor(document.get("post_processor"), vocab, path))
        special = read_added_tokens(document.get("added_tokens"), vocab, path)
        read_decoder(document.get("decoder"), path)
        read_truncation(document.get("truncation"), path)
        settings.update(read_padding(document.get("padding"), vocab, path))
    except (KeyError, TypeError, AttributeError, IndexError, StopIteration) as error:  # a field of the wrong shape
        raise ValueError(f"{path} is a malformed tokenizer.json ({type(error).__name__}: {error})") from None
    return TokenizerJson(vocab, settings, special)
