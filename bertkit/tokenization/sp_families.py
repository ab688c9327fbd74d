"""The SentencePiece model families, each the facts that set it apart (see ``sp_tokenizer.py``).

===============  ================  ==========================================  ==========================
family           file              template (single / pair)                    ids
===============  ================  ==========================================  ==========================
ALBERT           spiece.model      ``[CLS] A [SEP]`` / ``… B [SEP]``            the model's
XLNet            spiece.model      ``A <sep> <cls>`` / ``A <sep> B <sep> <cls>``  the model's; pads left
T5               spiece.model      ``A </s>`` / ``A </s> B </s>``               + 100 ``<extra_id_N>`` after
XLM-RoBERTa      sentencepiece     ``<s> A </s>`` / ``<s> A </s></s> B </s>``   fairseq: +1, ``<mask>`` last
                 .bpe.model
CamemBERT        sentencepiece     as XLM-R                                    fairseq: +4, ``<mask>`` last
                 .bpe.model
DeBERTa-v2/v3    spm.model         ``[CLS] A [SEP]`` / ``… B [SEP]``            the model's, ``[MASK]`` last
===============  ================  ==========================================  ==========================

ALBERT and XLNet prepare the text before SentencePiece as their original tokenizers do: `````` and ``''`` become
``"``, accents are removed (NFKD, then combining marks dropped) unless ``keep_accents``, and ALBERT lower-cases.
"""

from __future__ import annotations

import functools
import string
import unicodedata
from typing import Any

from .sp_normalizer import SPACE_SYMBOL
from .sp_tokenizer import Prepared, SentencePieceTokenizer
from .sp_words import words

SENTINELS = 100  # T5's <extra_id_0> .. <extra_id_99>


@functools.lru_cache(maxsize=65536)
def _prepared_char(char: str, lower: bool, strip_accents: bool) -> str:
    """One character as ALBERT / XLNet hand it to SentencePiece: accents removed, lower case."""
    chars = unicodedata.normalize("NFKD", char) if strip_accents else char
    if strip_accents:  # Rust's is_combining_mark: every mark (Mn, Mc, Me), as transformers' StripAccents
        chars = "".join(c for c in chars if unicodedata.category(c) not in ("Mn", "Mc", "Me"))
    if lower:
        chars = "".join(c.lower() for c in chars)  # per character: no final-sigma rule, as Rust
    return chars


def prepare_like_albert(text: str, lower: bool, strip_accents: bool) -> Prepared:
    """`````` / ``''`` → ``"``, accents removed, lower case: each output character keeps its original span."""
    if text.isascii() and "``" not in text and "''" not in text:  # no accents, one character each: str.lower
        return (text.lower() if lower else text), list(range(len(text))), list(range(1, len(text) + 1))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i = 0
    while i < len(text):
        if text.startswith("``", i) or text.startswith("''", i):
            out.append('"')
            starts.append(i + 1)  # as transformers' Replace: the new character takes the last one's place
            ends.append(i + 2)
            i += 2
            continue
        chars = _prepared_char(text[i], lower, strip_accents)
        out.append(chars)
        starts += [i] * len(chars)
        ends += [i + 1] * len(chars)
        i += 1
    return "".join(out), starts, ends


class AlbertTokenizer(SentencePieceTokenizer):
    """ALBERT: ``[CLS] A [SEP] B [SEP]``, lower-cased, accents removed."""

    tokenizer_class = "AlbertTokenizer"
    defaults = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "<unk>", "sep_token": "[SEP]",
                "pad_token": "<pad>", "cls_token": "[CLS]", "mask_token": "[MASK]"}

    def check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        known = {"do_lower_case": True, "keep_accents": False}
        unknown = set(settings) - set(known)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected settings {sorted(unknown)}")
        return {**known, **settings}

    def prepare(self, text: str) -> Prepared:
        return prepare_like_albert(text, self.settings["do_lower_case"], not self.settings["keep_accents"])


class XLNetTokenizer(AlbertTokenizer):
    """XLNet: ``A <sep> B <sep> <cls>`` (segments 0, 1, and 2 for ``<cls>``), padded on the left."""

    tokenizer_class = "XLNetTokenizer"
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "<sep>",
                "pad_token": "<pad>", "cls_token": "<cls>", "mask_token": "<mask>"}
    single = ("A", "sep_token", "cls_token")
    pair = ("A", "sep_token", "B", "sep_token", "cls_token")
    last_special_segment = 2
    pad_segment_id = 0  # transformers 5 pads segments with 0 (its slow XLNet and the original used 3)
    padding_side = "left"
    lstrip_tokens = ("<mask>",)
    model_max_length_default = 1_000_000_000_000_000_019_884_624_838_656  # transformers' "no limit"

    def __init__(self, vocab_file=None, *, additional_special_tokens=("<eop>", "<eod>"), **settings: Any):
        super().__init__(vocab_file, additional_special_tokens=additional_special_tokens, **settings)

    def check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        known = {"do_lower_case": False, "keep_accents": False, "remove_space": True}
        unknown = set(settings) - set(known)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected settings {sorted(unknown)}")
        return {**known, **settings}


class T5Tokenizer(SentencePieceTokenizer):
    """T5: ``A </s> B </s>``; the 100 sentinels ``<extra_id_N>`` follow the model's pieces, N=0 last."""

    tokenizer_class = "T5Tokenizer"
    defaults = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    single = ("A", "eos_token")
    pair = ("A", "eos_token", "B", "eos_token")
    segment_ids = (0, 0)
    model_max_length_default = 1_000_000_000_000_000_019_884_624_838_656

    def __init__(self, vocab_file=None, *, additional_special_tokens=None, **settings: Any):
        if additional_special_tokens is None:
            additional_special_tokens = [f"<extra_id_{i}>" for i in range(SENTINELS)]
        super().__init__(vocab_file, additional_special_tokens=additional_special_tokens, **settings)

    def build_vocab(self) -> dict[str, int]:
        vocab = super().build_vocab()
        for i in reversed(range(SENTINELS)):
            vocab.setdefault(f"<extra_id_{i}>", len(vocab))
        return vocab


class XLMRobertaTokenizer(SentencePieceTokenizer):
    """XLM-RoBERTa: ``<s> A </s></s> B </s>``; fairseq's ids: ``<s> <pad> </s> <unk>``, the model's pieces one
    further on, ``<mask>`` last."""

    tokenizer_class = "XLMRobertaTokenizer"
    vocab_file_name = "sentencepiece.bpe.model"
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    single = ("cls_token", "A", "sep_token")
    pair = ("cls_token", "A", "sep_token", "sep_token", "B", "sep_token")
    segment_ids = (0, 0)
    lstrip_tokens = ("<mask>",)
    fairseq_head = ("<s>", "<pad>", "</s>", "<unk>")
    first_piece = 3  # the model's pieces from here on follow the fairseq head

    def build_vocab(self) -> dict[str, int]:
        vocab = {token: i for i, token in enumerate(self.fairseq_head)}
        shift = len(self.fairseq_head) - self.first_piece
        for i, piece in enumerate(self.sp.pieces[self.first_piece:], start=self.first_piece):
            vocab.setdefault(piece, i + shift)
        return vocab


class CamembertTokenizer(XLMRobertaTokenizer):
    """CamemBERT: XLM-R's template; fairseq's ids with four (unused) tokens first, the model's pieces four on."""

    tokenizer_class = "CamembertTokenizer"
    fairseq_head = ("<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>", "<unk>NOTUSED")
    first_piece = 1
    lstrip_in_span = True

    def __init__(self, vocab_file=None, *, additional_special_tokens=("<s>NOTUSED", "</s>NOTUSED", "<unk>NOTUSED"),
                 **settings: Any):
        super().__init__(vocab_file, additional_special_tokens=additional_special_tokens, **settings)


@functools.lru_cache(maxsize=65536)
def is_punctuation(char: str) -> bool:
    """The Punctuation pre-tokenizer's test (as BERT's): ASCII punctuation (``$ + < = > ^ ` | ~`` too) or any
    Unicode P* character."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def punctuation_words(normalized: str, start: int = 0) -> list[tuple[str, list[int]]]:
    """DeBERTa-v2's ``split_by_punct`` on SentencePiece-normalised text from ``start`` (past a dummy prefix), as
    transformers 5's pre-tokenizers (Punctuation isolated, then Metaspace prepending ``▁`` to every pre-token and
    splitting before each ``▁``): (word, the normalised position of each of its characters; an added ``▁`` takes
    the next one's)."""
    chunks: list[tuple[int, int]] = []
    for i in range(start, len(normalized)):
        if is_punctuation(normalized[i]):
            chunks += [(start, i), (i, i + 1)] if i > start else [(i, i + 1)]
            start = i + 1
    if start < len(normalized):
        chunks.append((start, len(normalized)))
    out = []
    for s, e in chunks:
        text, positions = normalized[s:e], list(range(s, e))
        if text[0] != SPACE_SYMBOL:  # the ▁ a pre-token gets, though no space stood there
            text, positions = SPACE_SYMBOL + text, [s, *positions]
        out += [(word, positions[k:k + len(word)]) for k, word in words(text)]
    return out


class DebertaV2Tokenizer(SentencePieceTokenizer):
    """DeBERTa-v2 / v3: ``[CLS] A [SEP] B [SEP]`` with segment ids; ``[MASK]`` after the model's pieces."""

    tokenizer_class = "DebertaV2Tokenizer"
    vocab_file_name = "spm.model"
    defaults = {"bos_token": "[CLS]", "eos_token": "[SEP]", "unk_token": "[UNK]", "sep_token": "[SEP]",
                "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    token_type_ids_by_default = True
    space_in_offsets = True

    def check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        known = {"do_lower_case": False, "split_by_punct": False}
        unknown = set(settings) - set(known)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected settings {sorted(unknown)}")
        for name, value in settings.items():
            if not isinstance(value, bool):
                raise ValueError(f"{type(self).__name__}({name}=...) must be true or false, got {value!r}")
        return {**known, **settings}

    def prepare(self, text: str) -> Prepared:
        if not self.settings["do_lower_case"]:
            return super().prepare(text)
        if text.isascii():  # one character each
            return text.lower(), list(range(len(text))), list(range(1, len(text) + 1))
        # transformers' Lowercase alone (no ALBERT quotes), per character as Rust's: each keeps its span
        lowered = [_prepared_char(char, True, False) for char in text]
        starts = [i for i, chars in enumerate(lowered) for _ in chars]
        return "".join(lowered), starts, [i + 1 for i in starts]

    def segment(self, normalized: str, added_prefix: bool = False) -> list[tuple[str, int, int, int]]:
        """With ``split_by_punct``: each word of ``punctuation_words`` segmented alone (the Rust Unigram's
        pre-tokens), its pieces placed back in the normalised text."""
        if not self.settings["split_by_punct"]:
            return super().segment(normalized, added_prefix)
        out = []
        for word, positions in punctuation_words(normalized, int(added_prefix)):
            for piece, i, s, e in super().segment(word):
                # an added ▁ sits at the character after it: a piece of it alone spans that character
                start = positions[min(s, len(word) - 1)]
                out.append((piece, i, start, positions[e - 1] + 1 if e > s else start))
        return out

    def text_to_ids(self, text: str) -> list[int]:
        if self.settings["split_by_punct"]:  # the ids-only fast path knows no punctuation split
            return self.text_to_ids_with_offsets(text)[0]
        return super().text_to_ids(text)


FAMILIES: dict[str, type[SentencePieceTokenizer]] = {
    cls.tokenizer_class: cls for cls in (AlbertTokenizer, XLNetTokenizer, T5Tokenizer, XLMRobertaTokenizer,
                                         CamembertTokenizer, DebertaV2Tokenizer)}
MODEL_TYPES = {"albert": AlbertTokenizer, "xlnet": XLNetTokenizer, "t5": T5Tokenizer, "mt5": T5Tokenizer,
               "xlm-roberta": XLMRobertaTokenizer, "camembert": CamembertTokenizer, "deberta-v2": DebertaV2Tokenizer}
