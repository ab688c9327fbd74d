"""SentencePieceTokenizer: a ``.model`` file with a model family's special tokens, template and id layout.

ALBERT, XLNet, T5, XLM-RoBERTa, CamemBERT and DeBERTa-v2 share everything but a few facts, which each family's class
(``sp_families.py``) states as data: its file name, its special tokens, where they go (``[CLS] A [SEP]``,
``A <sep> <cls>``, ...), the segment ids, the side it pads on, how its ids sit against the SentencePiece model's
(fairseq's offset for XLM-R, tokens added after the model's pieces for T5's sentinels), and any text preparation
before SentencePiece (ALBERT / XLNet: quotes, accents, lower case).

Text → ids: special tokens written in the text are cut out whole; each piece between them is prepared, then
segmented by ``SentencePieceProcessor`` exactly as the ``sentencepiece`` library does (byte fallback included).
Offsets follow transformers' fast tokenizers: a token's span leaves out the spaces before it, and a lone ``▁``
takes the span of the character it stands before.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .batch import BatchEncoding, EncodesBatches, Sequence, check_text, rust_truncation_lengths, to_tensors
from .lookup import SPECIAL_ROLES, NamedSpecialTokens, special_token_pattern
from .sentencepiece import SentencePieceProcessor, decode_bytes
from .sp_folder import FAMILY_KEY, tokenizer_arguments
from .sp_normalizer import SPACE_SYMBOL

Span = tuple[int, int]
ROLES = SPECIAL_ROLES  # the named special tokens a family may set
# Prepared text: the text, and for each of its characters the span of the original it came from.
Prepared = tuple[str, list[int], list[int]]


def unchanged(text: str) -> Prepared:
    """No preparation: each character is its own span."""
    return text, list(range(len(text))), list(range(1, len(text) + 1))


class SentencePieceTokenizer(NamedSpecialTokens, EncodesBatches):
    """The shared machinery; a family's subclass sets the class attributes below."""

    tokenizer_class = "SentencePieceTokenizer"
    vocab_file_name = "spiece.model"
    defaults: dict[str, str | None] = {}  # role → token
    single = ("cls_token", "A", "sep_token")  # the template: roles and "A" / "B"
    pair = ("cls_token", "A", "sep_token", "B", "sep_token")
    segment_ids = (0, 1)  # segment of A (and its special tokens before B), of B
    last_special_segment: int | None = None  # XLNet gives its trailing <cls> segment 2
    pad_segment_id = 0
    padding_side = "right"
    token_type_ids_by_default = False
    lstrip_tokens: tuple[str, ...] = ()  # special tokens that take the spaces before them (``<mask>``)
    lstrip_in_span = False
    model_max_length_default = 512
    space_in_offsets = False  # DeBERTa-v2: a token's span starts at the space before it, not at its first letter

    def __init__(self, vocab_file: str | os.PathLike | None = None, *, additional_special_tokens: Iterable[str] = (),
                 model_max_length: int | None = None, tokenizer_json: str | os.PathLike | None = None,
                 **settings: Any):
        if (vocab_file is None) == (tokenizer_json is None):
            raise ValueError("give vocab_file (a SentencePiece .model) or tokenizer_json (a Unigram tokenizer.json)")
        self.tokenizer_json = None if tokenizer_json is None else Path(tokenizer_json)
        if self.tokenizer_json is not None:  # its vocabulary is final: ids as they stand, no family layout
            from .sp_tokenizer_json import read_unigram_json

            proto, _ = read_unigram_json(self.tokenizer_json)
            self.vocab_file = self.tokenizer_json
            self.sp = SentencePieceProcessor(model=proto)
        else:
            self.vocab_file = Path(vocab_file)
            self.sp = SentencePieceProcessor(self.vocab_file)
        roles = {role: settings.pop(role, self.defaults.get(role)) for role in ROLES}
        self.settings = self.check_settings(settings)
        for role, token in roles.items():
            setattr(self, role, token)
        self.additional_special_tokens = list(additional_special_tokens)
        self.model_max_length = model_max_length or self.model_max_length_default
        self.vocab = self.build_vocab() if self.tokenizer_json is None else SentencePieceTokenizer.build_vocab(self)
        for token in self.all_special_tokens:  # as transformers: a special token the model lacks is added after it
            if token not in self.vocab:
                self.vocab[token] = len(self.vocab)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self._specials = set(self.all_special_tokens)
        self._special_pattern = special_token_pattern(self._specials)
        self._spm_ids = [self.vocab.get(p, self.vocab[self.unk_token]) for p in self.sp.pieces]
        self.fix_spm_ids(self._spm_ids)
        self.sampling: tuple[float, int, random.Random] | None = None

    def enable_sampling(self, alpha: float = 0.1, nbest_size: int = -1, seed: int | None = None) -> None:
        """Subword regularisation from now on, as SentencePiece's ``enable_sampling``: each encoding draws a
        segmentation (Unigram: ∝ exp(alpha · score) over all, or over the ``nbest_size`` best; BPE: dropout
        ``alpha``). A data-augmentation option for pretraining and fine-tuning: pass the tokenizer as usual."""
        if not alpha >= 0.0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.sampling = (alpha, nbest_size, random.Random(seed))

    def disable_sampling(self) -> None:
        """Back to the best segmentation (the default)."""
        self.sampling = None

    # -- what a family changes ----------------------------------------------------------------------------

    def check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The family's own settings (``do_lower_case``, ...); anything else is an error."""
        if settings:
            raise TypeError(f"{type(self).__name__} got unexpected settings {sorted(settings)}")
        return {}

    def build_vocab(self) -> dict[str, int]:
        """Token → id: the SentencePiece model's pieces at their own ids (a family may shift or add)."""
        return {piece: i for i, piece in enumerate(self.sp.pieces)}

    def fix_spm_ids(self, spm_ids: list[int]) -> None:
        """Adjust the SentencePiece id → tokenizer id table in place (fairseq's special layout)."""

    def prepare(self, text: str) -> Prepared:
        """The text SentencePiece sees (ALBERT / XLNet change quotes, accents and case)."""
        return unchanged(text)

    def segment(self, normalized: str, added_prefix: bool = False) -> list[tuple[str, int, int, int]]:
        """(piece, id, start, end) over the normalised text: the best segmentation, or a sampled one
        (``added_prefix``: its first ``▁`` is SentencePiece's dummy prefix, not a space of the text)."""
        if self.sampling is None:
            return self.sp.segment(normalized)
        alpha, nbest_size, rng = self.sampling  # subword regularisation: another segmentation on every call
        return self.sp.sample_segment(normalized, alpha, nbest_size, rng)

    # -- vocabulary ---------------------------------------------------------------------------------------


    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        """Token(s) → id(s); an unknown token maps to the unknown token's id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    # -- text → tokens ------------------------------------------------------------------------------------

    def _segments(self, text: str) -> list[tuple[str, int, bool, int]]:
        """The text cut at special tokens written in it: (piece, start, is_special, end of its span)."""
        out: list[tuple[str, int, bool, int]] = []
        start = 0
        for match in self._special_pattern.finditer(text) if self._special_pattern is not None else ():
            token, i = match.group(), match.start()  # the leftmost special token, the longest there
            before = text[start:i]
            span_start = i
            if token in self.lstrip_tokens:
                before = before.rstrip()
                if self.lstrip_in_span:  # CamemBERT's <mask> span takes the spaces it ate
                    span_start = start + len(before)
            out.append((before, start, False, start + len(before)))
            out.append((token, span_start, True, i + len(token)))
            start = match.end()
        out.append((text[start:], start, False, len(text)))
        return [s for s in out if s[0] or s[2]]

    def _tokens(self, text: str, start: int) -> list[tuple[int, Span]]:
        """(id, span in the original text) of one text between special tokens."""
        prepared, starts, ends = self.prepare(text)
        if not prepared:
            return []
        normalized, rule_starts, rule_ends, _ = self.sp.normalizer.normalize_with_spans(prepared)
        out = []
        added_prefix = bool(normalized) and rule_ends[0] == 0  # SentencePiece's dummy ▁ with no space before it
        for _, i, s, e in self.segment(normalized, added_prefix):
            if s == e:  # a byte piece before the last of its character: empty, where the character starts
                k = rule_starts[min(s, len(normalized) - 1)]
                out.append((self._spm_ids[i], (starts[k] + start, starts[k] + start)))
                continue
            j = s
            while j < e and normalized[j] == SPACE_SYMBOL:
                j += 1
            lone = j == e  # only spaces: they stand before the next character
            k = rule_starts[e if lone and e < len(normalized) else e - 1 if lone else j]  # first char, prepared
            last = rule_starts[e - 1]  # as the Rust normalisers: a character a rule made spans its first source
            space_before = j > s and self.space_in_offsets and k > 0 and self.sp.normalizer.is_space(prepared[k - 1])
            if space_before:  # DeBERTa's offsets keep the (last) space before the word
                span = (starts[k - 1], ends[k - 1] if lone else ends[last])
            else:
                span = (starts[k], ends[k] if lone else ends[last])
            out.append((self._spm_ids[i], (span[0] + start, span[1] + start)))
        return out

    def text_to_ids_with_offsets(self, text: str) -> tuple[list[int], list[Span]]:
        """Text → ids and each token's span in ``text`` (no special tokens added)."""
        check_text(text, "text")
        ids: list[int] = []
        spans: list[Span] = []
        for piece, start, special, end in self._segments(text):
            if special:
                ids.append(self.vocab[piece])
                spans.append((start, end))
            else:
                for i, span in self._tokens(piece, start):
                    ids.append(i)
                    spans.append(span)
        return ids, spans

    def text_to_ids(self, text: str) -> list[int]:
        """Text → ids (no special tokens added); without sampling, no spans are built (SentencePiece's fast path,
        the same ids)."""
        if self.sampling is not None:
            return self.text_to_ids_with_offsets(text)[0]
        check_text(text, "text")
        ids: list[int] = []
        spm_ids, encode = self._spm_ids, self.sp.encode_ids
        for piece, _, special, _ in self._segments(text):
            if special:
                ids.append(self.vocab[piece])
            else:
                ids += [spm_ids[i] for i in encode(self.prepare(piece)[0])]
        return ids

    def tokenize(self, text: str) -> list[str]:
        """Text → tokens (no special tokens added)."""
        return [self.ids_to_tokens[i] for i in self.text_to_ids(text)]

    # -- tokens → model inputs ----------------------------------------------------------------------------

    def build_inputs(self, ids_a: list[int], ids_b: list[int] | None, spans_a: list[Span] | None = None,
                     spans_b: list[Span] | None = None) -> Sequence:
        """The family's template around one text or a pair."""
        seq = Sequence()
        template = self.single if ids_b is None else self.pair
        segment = self.segment_ids[0]
        for k, part in enumerate(template):
            if part == "A":
                seq.append(ids_a, segment, False, spans_a)
            elif part == "B":
                segment = self.segment_ids[1]
                seq.append(ids_b, segment, False, spans_b)
            else:
                last = k == len(template) - 1 and self.last_special_segment is not None
                seq.append([self._role_id(part)], self.last_special_segment if last else segment, True, None)
        return seq

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """How many special tokens the template adds."""
        return sum(part not in ("A", "B") for part in (self.pair if pair else self.single))

    def _build(self, text: str, pair: str | None, add_special: bool, truncation: bool | str,
               max_length: int | None, offsets: bool) -> Sequence:
        """One sequence: tokenize, truncate (the Rust tokenizers' rule, as transformers), add special tokens."""
        ids_a, spans_a = self.text_to_ids_with_offsets(text) if offsets else (self.text_to_ids(text), None)
        ids_b, spans_b = (None, None) if pair is None else self.text_to_ids_with_offsets(pair) if offsets else (
            self.text_to_ids(pair), None)
        if truncation:
            budget = max_length - (self.num_special_tokens_to_add(pair is not None) if add_special else 0)
            if budget < 0:
                raise ValueError(f"max_length={max_length} leaves no room for the special tokens")
            keep_a, keep_b = rust_truncation_lengths(len(ids_a), None if ids_b is None else len(ids_b), budget,
                                                     truncation)
            ids_a, spans_a = ids_a[:keep_a], spans_a[:keep_a] if spans_a else spans_a
            if ids_b is not None:
                ids_b, spans_b = ids_b[:keep_b], spans_b[:keep_b] if spans_b else spans_b
        if add_special:
            return self.build_inputs(ids_a, ids_b, spans_a, spans_b)
        seq = Sequence()
        seq.append(ids_a, self.segment_ids[0], False, spans_a)
        if ids_b is not None:
            seq.append(ids_b, self.segment_ids[1], False, spans_b)
        return seq

    def __call__(self, text: str | list[str], text_pair: str | list[str] | None = None, *,
                 padding: bool | str = False, max_length: int | None = None, return_tensors: str | None = None,
                 **options: Any) -> BatchEncoding:
        """As transformers: ``input_ids``, ``attention_mask`` (+ asked-for columns), padded on the family's side."""
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        pairs = None if text_pair is None else (list(text_pair) if batched else [text_pair])
        plain = EncodesBatches.__call__(self, texts, pairs, padding=False, max_length=max_length, **options)
        length = _padded_length([len(row) for row in plain["input_ids"]], padding, max_length,
                                self.model_max_length)
        columns = dict(plain)
        if length is not None:
            fill = {"input_ids": self.pad_token_id, "token_type_ids": self.pad_segment_id, "attention_mask": 0,
                    "special_tokens_mask": 1, "offset_mapping": (0, 0)}
            for name, rows in columns.items():
                pads = [[fill[name]] * (length - len(row)) for row in rows]
                columns[name] = [p + row if self.padding_side == "left" else row + p
                                 for p, row in zip(pads, rows, strict=True)]
        if not batched and return_tensors is None:
            columns = {name: rows[0] for name, rows in columns.items()}
        return BatchEncoding(to_tensors(columns, return_tensors))

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True,
               truncation: bool | str = False, max_length: int | None = None, sample: bool = False,
               alpha: float = 0.1, nbest_size: int = -1) -> list[int]:
        """Text (and an optional pair) → ids with the family's special tokens; ``sample=True`` draws one
        segmentation (as ``enable_sampling(alpha, nbest_size)``, for this call only)."""
        saved = self.sampling
        if sample:
            self.sampling = (alpha, nbest_size, saved[2] if saved else random.Random())
        try:
            return self(text, text_pair, add_special_tokens=add_special_tokens, truncation=truncation,
                        max_length=max_length)["input_ids"]
        finally:
            self.sampling = saved

    # -- ids → text ---------------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids → text as transformers' fast tokenizers decode: tokens joined, ``▁`` as a space (the text's first
        one dropped), byte pieces joined into their characters, special tokens written out unless skipped."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        tokens = self.convert_ids_to_tokens([ids] if isinstance(ids, int) else [int(i) for i in ids],
                                            skip_special_tokens)
        return self.convert_tokens_to_string(tokens)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Tokens → text (see ``decode``)."""
        out: list[str] = []
        pending = bytearray()
        for token in tokens:
            if self.sp.byte_fallback and len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
                pending.append(int(token[3:5], 16))
                continue
            if pending:
                out.append(decode_bytes(bytes(pending)))
                pending.clear()
            out.append(token)
        if pending:
            out.append(decode_bytes(bytes(pending)))
        text = [t.replace(SPACE_SYMBOL, " ") for t in out]
        if text and text[0].startswith(" "):
            text[0] = text[0][1:]
        return "".join(text)

    # -- files --------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> SentencePieceTokenizer:
        """A folder with the family's ``.model`` file and, if present, ``tokenizer_config.json``."""
        return cls(**{**tokenizer_arguments(Path(folder), cls), **overrides})

    def save_pretrained(self, folder: str | os.PathLike) -> list[Path]:
        """Write the ``.model`` file, ``tokenizer_config.json`` and a ``tokenizer.json`` (Unigram as transformers 5
        writes it, or BPE; a tokenizer read from a tokenizer.json copies that file). transformers reads them back."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (self.vocab_file_name if self.tokenizer_json is None else "tokenizer.json")
        if target.resolve() != self.vocab_file.resolve():
            shutil.copyfile(self.vocab_file, target)
        config = {"tokenizer_class": self.tokenizer_class, "model_max_length": self.model_max_length,
                  **{role: getattr(self, role) for role in ROLES if getattr(self, role) is not None},
                  **self.settings}
        if self.additional_special_tokens:
            config["additional_special_tokens"] = self.additional_special_tokens
        if self.tokenizer_json is None and self.sp.model_type == "bpe":
            # transformers' family classes build a Unigram from any tokenizer.json; its generic class reads the BPE
            # one as written (the library's ids), and bertkit keeps the family under FAMILY_KEY
            config = {"tokenizer_class": "PreTrainedTokenizerFast", FAMILY_KEY: self.tokenizer_class,
                      **{k: v for k, v in config.items() if k != "tokenizer_class"}}
        write_text_atomic(folder / "tokenizer_config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        written = [target, folder / "tokenizer_config.json"]
        if self.tokenizer_json is None:  # the Rust library's file beside the model (Unigram or BPE)
            from .sp_tokenizer_json import sentencepiece_json

            document = json.dumps(sentencepiece_json(self), indent=2, ensure_ascii=False) + "\n"
            written.append(write_text_atomic(folder / "tokenizer.json", document))
        return written

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.vocab_file.name}, vocab_size={len(self.vocab)})"


def _padded_length(lengths: list[int], padding: bool | str, max_length: int | None,
                   model_max_length: int) -> int | None:
    from .batch import padded_length

    if padding == "max_length" and max_length is None:
        max_length = model_max_length
    return padded_length(lengths, padding, max_length)

