"""``SentencePieceProcessor``: a SentencePiece ``.model`` file → pieces, ids and offsets, in pure Python.

Text → pieces in three steps, each in its own module:

1. ``sp_normalizer``: the model's normalisation, whitespace rules and the ``▁`` meta-symbol;
2. the model segments the normalised text: ``unigram`` (Viterbi, n-best, sampling) or ``sp_bpe``;
3. a piece outside the vocabulary becomes ``<unk>``, or, with ``byte_fallback``, its UTF-8 bytes as ``<0xE3>``
   pieces (all but the last byte piece cover no text, as in SentencePiece).

Every piece carries its span in the original text (character offsets), from the normaliser's alignment. Ids,
pieces, n-best lists and scores equal the ``sentencepiece`` library's (tests/test_sentencepiece.py).
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .sentencepiece_model import (
    BYTE,
    CONTROL,
    PIECE_TYPES,
    UNKNOWN,
    USER_DEFINED,
    ModelProto,
    SentencePieceModelError,
    load_model,
    parse_model,
)
from .sp_bpe import SentencePieceBPE
from .sp_normalizer import SPACE_SYMBOL, Normalizer
from .sp_words import WORDWISE_LIMIT, WordSegmenter
from .unigram import UnigramModel

KNOWN_NORMALIZERS = {"identity", "nfkc", "nmt_nfkc", "nfkc_cf", "nmt_nfkc_cf", "user_defined", ""}


@dataclass(frozen=True)
class Token:
    """One piece of an encoded text, with its span ``[start, end)`` in the original text (characters)."""

    piece: str
    id: int
    start: int
    end: int


def decode_bytes(data: bytes) -> str:
    """Bytes → text, one U+FFFD per byte that does not start a valid UTF-8 character (as SentencePiece)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    out, i = [], 0
    while i < len(data):
        lead = data[i]
        size = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 1
        try:
            out.append(data[i:i + size].decode("utf-8"))
            i += size
        except UnicodeDecodeError:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def byte_piece(byte: int) -> str:
    """The piece that stands for one byte under byte fallback: ``<0xE3>``."""
    return f"<0x{byte:02X}>"


class SentencePieceProcessor:
    """A SentencePiece model (Unigram or BPE) read from a ``.model`` file or a ``ModelProto``."""

    def __init__(self, model_file: str | os.PathLike | None = None, *, model: ModelProto | None = None,
                 model_proto: bytes | None = None):
        if sum(x is not None for x in (model_file, model, model_proto)) != 1:
            raise ValueError("give exactly one of model_file (a path), model (a ModelProto) or model_proto (bytes)")
        self.source = str(model_file) if model_file is not None else "the model"
        if model_file is not None:
            model = load_model(model_file)
        elif model_proto is not None:
            model = parse_model(model_proto)
        self.proto = model
        self._check()
        pieces = [p.piece for p in model.pieces]
        scores = [p.score for p in model.pieces]
        types = [p.type for p in model.pieces]
        self.pieces, self.scores, self.types = pieces, scores, types
        self.piece_to_id = {p: i for i, p in enumerate(pieces)}
        self.unk_id = types.index(UNKNOWN)
        trainer = model.trainer_spec
        self.byte_fallback = trainer["byte_fallback"]
        self.byte_ids = {int(p[3:5], 16): i for i, p in enumerate(pieces) if types[i] == BYTE}
        user_defined = [p for p, t in zip(pieces, types, strict=True) if t == USER_DEFINED]
        self.normalizer = Normalizer(model.normalizer_spec, user_defined, trainer["treat_whitespace_as_suffix"])
        self.add_dummy_prefix = model.normalizer_spec["add_dummy_prefix"]
        self.remove_extra_whitespaces = model.normalizer_spec["remove_extra_whitespaces"]
        denormalizer = model.denormalizer_spec
        self.denormalizer = (Normalizer(denormalizer) if denormalizer and denormalizer["precompiled_charsmap"]
                             else None)
        self.model_type = model.model_type
        if self.model_type == "unigram":
            self.unigram = UnigramModel(pieces, scores, types, self.unk_id)
        else:
            self.bpe = SentencePieceBPE(pieces, scores, types, self.unk_id, user_defined)
        self.words = WordSegmenter(self)
        self._by_word = not trainer["treat_whitespace_as_suffix"] and all(
            SPACE_SYMBOL not in p[1:] for p, t in zip(pieces, types, strict=True) if t != BYTE)

    def _check(self) -> None:
        """Refuse what SentencePiece refuses, and what bertkit does not reproduce, naming the file and the part."""
        where, model = self.source, self.proto
        if model.model_type not in ("unigram", "bpe"):
            raise SentencePieceModelError(f"{where}: trainer_spec.model_type is {model.model_type!r}; bertkit reads "
                                          "unigram and bpe models")
        name = model.normalizer_spec["name"]
        if name not in KNOWN_NORMALIZERS:
            raise SentencePieceModelError(f"{where}: normalizer_spec.name {name!r} is not a normaliser bertkit "
                                          f"knows ({', '.join(sorted(n for n in KNOWN_NORMALIZERS if n))})")
        if name not in ("identity", "") and not model.normalizer_spec["precompiled_charsmap"]:
            raise SentencePieceModelError(f"{where}: normalizer_spec.name is {name!r} but the model carries no "
                                          "precompiled_charsmap (bertkit reads the rules from the model only)")
        types = [p.type for p in model.pieces]
        if types.count(UNKNOWN) != 1:
            raise SentencePieceModelError(f"{where}: pieces: {types.count(UNKNOWN)} pieces of type UNKNOWN; a model "
                                          "has exactly one")
        seen: set[str] = set()
        for i, p in enumerate(model.pieces):
            if p.piece in seen:
                raise SentencePieceModelError(f"{where}: pieces[{i}] {p.piece!r} is already defined")
            seen.add(p.piece)
            if p.type == BYTE and not (len(p.piece) == 6 and p.piece.startswith("<0x") and p.piece.endswith(">")):
                raise SentencePieceModelError(f"{where}: pieces[{i}] {p.piece!r} has type BYTE but is not <0xNN>")
        n_bytes = types.count(BYTE)
        if n_bytes and not model.trainer_spec["byte_fallback"]:
            raise SentencePieceModelError(f"{where}: pieces: byte pieces although trainer_spec.byte_fallback is false")
        if model.trainer_spec["byte_fallback"] and n_bytes != 256:
            raise SentencePieceModelError(f"{where}: pieces: {n_bytes} byte pieces although byte_fallback needs 256")

    # -- vocabulary ---------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.pieces)

    def get_piece_size(self) -> int:
        """The vocabulary size."""
        return len(self.pieces)

    def id_to_piece(self, i: int) -> str:
        """The piece of an id."""
        return self.pieces[i]

    def piece_to_id_or_unk(self, piece: str) -> int:
        """The id of a piece, ``unk_id`` for one outside the vocabulary."""
        return self.piece_to_id.get(piece, self.unk_id)

    def is_control(self, i: int) -> bool:
        """Whether an id is a control piece (``<s>``, ``[CLS]``: no text)."""
        return self.types[i] == CONTROL

    def is_unknown(self, i: int) -> bool:
        """Whether an id is the unknown piece."""
        return self.types[i] == UNKNOWN

    def is_byte(self, i: int) -> bool:
        """Whether an id is a byte-fallback piece (``<0xE3>``)."""
        return self.types[i] == BYTE

    def type_name(self, i: int) -> str:
        """An id's piece type: NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED or BYTE."""
        return PIECE_TYPES[self.types[i]]

    # -- text → pieces ------------------------------------------------------------------------------------

    def _segment(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """(piece, id, start, end) over the normalised text, by the model's best segmentation (word by word
        through a cache where no piece crosses a word's start, see ``sp_words``)."""
        if not self._by_word or len(normalized) > WORDWISE_LIMIT:
            return self._segment_run(normalized)
        return self.words.segment(normalized)

    def encode_ids(self, text: str) -> list[int]:
        """Text → ids of its best segmentation, without building spans (the fast path of ``encode``)."""
        normalized = self.normalizer.normalize_text(text)
        if not self._by_word or len(normalized) > WORDWISE_LIMIT:
            return [i for _, i, _, _ in self.expand(self._segment_run(normalized))]
        return self.words.encode_ids(normalized)

    def _segment_run(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """The model's segmentation of one run of normalised text."""
        if self.model_type == "unigram":
            return [(normalized[s:e], i, s, e) for s, e, i in self.unigram.viterbi(normalized)]
        out, position = [], 0
        for piece, i in self.bpe.segment(normalized):
            out.append((piece, i, position, position + len(piece)))
            position += len(piece)
        return out

    def expand(self, segments) -> list[tuple[str, int, int, int]]:
        """Unknown pieces as SentencePiece outputs them: a run merged into one, or, with byte fallback, one piece
        per UTF-8 byte, all but the last covering nothing. Spans stay in normalised characters."""
        out: list[tuple[str, int, int, int]] = []
        unk = self.unk_id
        for piece, i, s, e in segments:
            if i == unk and self.byte_fallback:
                data = piece.encode("utf-8", "surrogatepass")
                out += [(byte_piece(b), self.byte_ids[b], s, s) for b in data[:-1]]
                out.append((byte_piece(data[-1]), self.byte_ids[data[-1]], s, e))
            elif i == unk and out and out[-1][1] == unk:  # a run of unknown pieces is one <unk>
                out[-1] = (out[-1][0] + piece, unk, out[-1][2], e)
            else:
                out.append((piece, i, s, e))
        return out

    def segment(self, normalized: str) -> list[tuple[str, int, int, int]]:
        """Normalised text → (piece, id, start, end) in normalised characters, unknown pieces expanded."""
        return self.expand(self._segment(normalized))

    def _with_bytes(self, segments, align: list[int]) -> list[Token]:
        """Expanded pieces with their spans in the original text."""
        return [Token(piece, i, align[s], align[e]) for piece, i, s, e in self.expand(segments)]

    def encode_tokens(self, text: str) -> list[Token]:
        """Text → its best segmentation, each piece with its id and its span in ``text``."""
        normalized, align = self.normalizer.normalize(text)
        return self._with_bytes(self._segment(normalized), align)

    def encode(self, text: str, out_type: type = int, enable_sampling: bool = False, alpha: float = 0.1,
               nbest_size: int = -1) -> list[int] | list[str]:
        """Text → ids (``out_type=int``) or pieces (``out_type=str``), as ``sentencepiece``'s ``encode``
        (``enable_sampling=True``: one sampled segmentation, see ``sample_tokens``)."""
        if out_type is int and not enable_sampling:
            return self.encode_ids(text)
        tokens = self.sample_tokens(text, alpha, nbest_size) if enable_sampling else self.encode_tokens(text)
        return [t.id for t in tokens] if out_type is int else [t.piece for t in tokens]

    def encode_as_ids(self, text: str) -> list[int]:
        """Text → ids."""
        return self.encode(text, int)

    def encode_as_pieces(self, text: str) -> list[str]:
        """Text → pieces."""
        return self.encode(text, str)

    def nbest(self, text: str, nbest_size: int) -> list[tuple[list[Token], float]]:
        """The ``nbest_size`` best segmentations with their scores (Unigram only), best first."""
        if self.model_type != "unigram":
            raise ValueError(f"{self.source}: n-best segmentation needs a unigram model, this one is "
                             f"{self.model_type}")
        normalized, align = self.normalizer.normalize(text)
        return [(self._with_bytes([(normalized[n.start:n.end], n.id, n.start, n.end) for n in nodes], align), score)
                for nodes, score in self.unigram.nbest(normalized, nbest_size)]

    def sample_tokens(self, text: str, alpha: float = 0.1, nbest_size: int = -1,
                      rng: random.Random | None = None) -> list[Token]:
        """One sampled segmentation (SentencePiece's ``enable_sampling``), pieces with their spans in ``text``.

        Unigram: ``nbest_size < 0`` draws from all segmentations with probability ∝ exp(alpha · score);
        ``nbest_size > 1`` draws from the n best the same way; 0 or 1 gives the best. BPE: BPE-dropout, each
        merge skipped with probability ``alpha``.
        """
        normalized, align = self.normalizer.normalize(text)
        return [Token(p, i, align[s], align[e]) for p, i, s, e in self.sample_segment(normalized, alpha, nbest_size,
                                                                                     rng)]

    def sample_segment(self, normalized: str, alpha: float = 0.1, nbest_size: int = -1,
                       rng: random.Random | None = None) -> list[tuple[str, int, int, int]]:
        """``segment`` with a sampled segmentation instead of the best (see ``sample_tokens``)."""
        rng = rng or random
        if self.model_type == "bpe":
            segments, position = [], 0
            for piece, i in self.bpe.segment(normalized, alpha, rng):
                segments.append((piece, i, position, position + len(piece)))
                position += len(piece)
            return self.expand(segments)
        if nbest_size in (0, 1) or not normalized:
            return self.segment(normalized)
        if nbest_size < 0:
            nodes = self.unigram.sample(normalized, alpha, rng)
        else:
            candidates = self.unigram.nbest(normalized, nbest_size)
            top = max(score for _, score in candidates)
            weights = [math.exp(alpha * (score - top)) for _, score in candidates]
            nodes = rng.choices(candidates, weights)[0][0]
        return self.expand([(normalized[n.start:n.end], n.id, n.start, n.end) for n in nodes])

    def sample_encode(self, text: str, alpha: float = 0.1, nbest_size: int = -1, out_type: type = int,
                      rng: random.Random | None = None) -> list[int] | list[str]:
        """A sampled segmentation as ids or pieces."""
        tokens = self.sample_tokens(text, alpha, nbest_size, rng)
        return [t.id for t in tokens] if out_type is int else [t.piece for t in tokens]

    # -- pieces → text ------------------------------------------------------------------------------------

    def decode_pieces(self, pieces: list[str]) -> str:
        """Pieces → text: ``▁`` back to spaces, byte pieces back to UTF-8, control pieces dropped."""
        return self.decode([self.piece_to_id_or_unk(p) for p in pieces], pieces)

    def decode(self, ids: list[int], pieces: list[str] | None = None) -> str:
        """Ids → text, as SentencePiece decodes: leading ``▁`` dropped, ``<unk>`` shown as `` ⁇ ``, bytes joined."""
        pieces = pieces if pieces is not None else [self.pieces[i] for i in ids]
        out: list[str] = []
        pending = bytearray()
        at_start, start_space_seen = True, False
        for i, piece in zip(ids, pieces, strict=True):
            if self.types[i] == BYTE:
                pending.append(int(piece[3:5], 16))
                continue
            if pending:
                out.append(decode_bytes(pending))
                pending.clear()
            if start_space_seen or any(out):
                at_start = False
            text, start_space_seen = self._decode_piece(i, piece, at_start)
            out.append(text)
        if pending:
            out.append(decode_bytes(pending))
        text = "".join(out)
        return self.denormalizer.normalize(text)[0] if self.denormalizer is not None else text

    def _decode_piece(self, i: int, piece: str, at_start: bool) -> tuple[str, bool]:
        """One piece's text, and whether it consumed the space that starts the text."""
        if self.types[i] == CONTROL:
            return "", False
        if self.types[i] == UNKNOWN:
            return (self.proto.trainer_spec["unk_surface"] if piece == self.pieces[i] else piece), False
        consumed = False
        if at_start and (self.add_dummy_prefix or self.remove_extra_whitespaces) and piece.startswith(SPACE_SYMBOL):
            piece = piece[1:]
            # with extra whitespace removed, every leading space piece is dropped, not only the first
            consumed = not self.remove_extra_whitespaces
        return piece.replace(SPACE_SYMBOL, " "), consumed

    def __repr__(self) -> str:
        return (f"SentencePieceProcessor({self.source}, {self.model_type}, vocab_size={len(self.pieces)}, "
                f"byte_fallback={self.byte_fallback})")


def load(path: str | os.PathLike) -> SentencePieceProcessor:
    """Read a ``.model`` file."""
    return SentencePieceProcessor(Path(path))

