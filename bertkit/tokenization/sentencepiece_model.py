"""SentencePiece's model file (``*.model``): a serialized ``ModelProto``, read and written without protobuf.

The protobuf wire format is a run of fields, each a varint key (``field_number << 3 | wire_type``) then a value: a
varint (type 0), 8 bytes (type 1), a length-prefixed run of bytes (type 2: strings, bytes, nested messages) or 4
bytes (type 5: floats). ``ModelProto`` (sentencepiece_model.proto) holds:

* 1 ``pieces`` (repeated): 1 piece (string), 2 score (float), 3 type (NORMAL=1, UNKNOWN=2, CONTROL=3,
  USER_DEFINED=4, UNUSED=5, BYTE=6);
* 2 ``trainer_spec``: model_type (3: UNIGRAM=1, BPE=2, WORD=3, CHAR=4), vocab_size (4), split_digits (25),
  byte_fallback (35), the special ids (40..43) and pieces (45..48), ``unk_surface`` (44), ...;
* 3 ``normalizer_spec``: name (1), precompiled_charsmap (2), add_dummy_prefix (3), remove_extra_whitespaces (4),
  escape_whitespaces (5), normalization_rule_tsv (6);
* 5 ``denormalizer_spec`` (a NormalizerSpec).

Fields this reader does not know are skipped, as protobuf does; the fields it keeps are listed in the tables below.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
PIECE_TYPES = {NORMAL: "NORMAL", UNKNOWN: "UNKNOWN", CONTROL: "CONTROL", USER_DEFINED: "USER_DEFINED",
               UNUSED: "UNUSED", BYTE: "BYTE"}
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}

# field number → (name, kind, default); kind: "str", "bytes", "bool", "int" (int32 / int64 / enum), "float",
# "strs" (repeated string). Defaults are sentencepiece_model.proto's.
TRAINER_FIELDS = {
    1: ("input", "strs", None), 7: ("input_format", "str", ""), 2: ("model_prefix", "str", ""),
    3: ("model_type", "int", 1), 4: ("vocab_size", "int", 8000), 5: ("accept_language", "strs", None),
    6: ("self_test_sample_size", "int", 0), 10: ("character_coverage", "float", 0.9995),
    11: ("input_sentence_size", "int", 0), 19: ("shuffle_input_sentence", "bool", True),
    14: ("seed_sentencepiece_size", "int", 1_000_000), 15: ("shrinking_factor", "float", 0.75),
    18: ("max_sentence_length", "int", 4192), 16: ("num_threads", "int", 16), 17: ("num_sub_iterations", "int", 2),
    20: ("max_sentencepiece_length", "int", 16), 21: ("split_by_unicode_script", "bool", True),
    23: ("split_by_number", "bool", True), 22: ("split_by_whitespace", "bool", True),
    24: ("treat_whitespace_as_suffix", "bool", False), 26: ("allow_whitespace_only_pieces", "bool", False),
    25: ("split_digits", "bool", False), 53: ("pretokenization_delimiter", "str", ""),
    30: ("control_symbols", "strs", None), 31: ("user_defined_symbols", "strs", None),
    36: ("required_chars", "str", ""), 35: ("byte_fallback", "bool", False),
    32: ("vocabulary_output_piece_score", "bool", True), 33: ("hard_vocab_limit", "bool", True),
    34: ("use_all_vocab", "bool", False), 40: ("unk_id", "int", 0), 41: ("bos_id", "int", 1),
    42: ("eos_id", "int", 2), 43: ("pad_id", "int", -1), 45: ("unk_piece", "str", "<unk>"),
    46: ("bos_piece", "str", "<s>"), 47: ("eos_piece", "str", "</s>"), 48: ("pad_piece", "str", "<pad>"),
    44: ("unk_surface", "str", " \u2047 "), 49: ("train_extremely_large_corpus", "bool", False),
}
NORMALIZER_FIELDS = {
    1: ("name", "str", ""), 2: ("precompiled_charsmap", "bytes", b""), 3: ("add_dummy_prefix", "bool", True),
    4: ("remove_extra_whitespaces", "bool", True), 5: ("escape_whitespaces", "bool", True),
    6: ("normalization_rule_tsv", "str", ""),
}


class SentencePieceModelError(ValueError):
    """A file that is not a readable SentencePiece model; the message names the file and the part."""


@dataclass
class Piece:
    """One vocabulary entry: its text, its log-probability (Unigram) or merge rank (BPE), and its type."""

    piece: str
    score: float = 0.0
    type: int = NORMAL


@dataclass
class ModelProto:
    """The parts of a SentencePiece model bertkit uses: pieces, trainer settings, normaliser settings."""

    pieces: list[Piece] = field(default_factory=list)
    trainer_spec: dict = field(default_factory=dict)
    normalizer_spec: dict = field(default_factory=dict)
    denormalizer_spec: dict | None = None

    @property
    def model_type(self) -> str:
        """``unigram``, ``bpe``, ``word`` or ``char``."""
        return MODEL_TYPES.get(self.trainer_spec["model_type"], str(self.trainer_spec["model_type"]))


# -- reading -------------------------------------------------------------------------------------------------


def _varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return it and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise SentencePieceModelError(f"{where}: the file ends inside a number (truncated?)")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise SentencePieceModelError(f"{where}: a number longer than 10 bytes (not a protobuf message)")


def fields(data: bytes, where: str) -> list[tuple[int, int, int | bytes]]:
    """Split a protobuf message into (field number, wire type, value) triples, in file order."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos, where)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise SentencePieceModelError(f"{where}: field number 0 at byte {pos} (not a protobuf message)")
        if wire == 0:
            value, pos = _varint(data, pos, where)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            if pos + size > len(data):
                raise SentencePieceModelError(f"{where}: the file ends inside field {number} (truncated?)")
            value, pos = data[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(data, pos, where)
            if pos + size > len(data):
                raise SentencePieceModelError(f"{where}: field {number} says {size} bytes but only "
                                              f"{len(data) - pos} are left (truncated?)")
            value, pos = data[pos:pos + size], pos + size
        else:
            raise SentencePieceModelError(f"{where}: wire type {wire} of field {number} (not a protobuf message)")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    """A varint read as a two's-complement int64 (protobuf writes -1 as ten bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes, where: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SentencePieceModelError(f"{where}: a string that is not UTF-8 ({error})") from None


def _message(data: bytes, table: dict, where: str) -> dict:
    """Decode a settings message by its field table; absent fields take the .proto's defaults."""
    out = {name: ([] if kind == "strs" else default) for name, kind, default in table.values()}
    for number, wire, value in fields(data, where):
        if number not in table:
            continue
        name, kind, _ = table[number]
        expected = {"str": 2, "bytes": 2, "strs": 2, "float": 5}.get(kind, 0)
        if wire != expected:
            raise SentencePieceModelError(f"{where}: field {name} has wire type {wire}, expected {expected}")
        if kind == "str":
            out[name] = _text(value, f"{where}.{name}")
        elif kind == "strs":
            out[name].append(_text(value, f"{where}.{name}"))
        elif kind == "bytes":
            out[name] = bytes(value)
        elif kind == "float":
            out[name] = struct.unpack("<f", value)[0]
        elif kind == "bool":
            out[name] = bool(value)
        else:
            out[name] = _signed(value)
    return out


def _piece(data: bytes, where: str) -> Piece:
    """Decode one ``SentencePiece`` entry."""
    piece = Piece("")
    for number, wire, value in fields(data, where):
        if number == 1 and wire == 2:
            piece.piece = _text(value, f"{where}.piece")
        elif number == 2 and wire == 5:
            piece.score = struct.unpack("<f", value)[0]
        elif number == 3 and wire == 0:
            piece.type = value
    if piece.type not in PIECE_TYPES:
        raise SentencePieceModelError(f"{where}: piece {piece.piece!r} has type {piece.type}, which bertkit does not "
                                      f"handle (known: {', '.join(f'{k}={v}' for k, v in PIECE_TYPES.items())})")
    return piece


def parse_model(data: bytes, where: str = "the model") -> ModelProto:
    """Decode a serialized ModelProto; errors name ``where`` (the file) and the part."""
    model = ModelProto()
    trainer = normalizer = b""
    for number, wire, value in fields(data, where):
        if wire != 2 and number in (1, 2, 3, 5):
            raise SentencePieceModelError(f"{where}: field {number} of ModelProto is not a message")
        if number == 1:
            model.pieces.append(_piece(value, f"{where}: pieces[{len(model.pieces)}]"))
        elif number == 2:
            trainer += value  # a message given twice is merged, as protobuf does
        elif number == 3:
            normalizer += value
        elif number == 5:
            model.denormalizer_spec = _message(value, NORMALIZER_FIELDS, f"{where}: denormalizer_spec")
    if not model.pieces:
        raise SentencePieceModelError(f"{where} holds no pieces: not a SentencePiece model")
    model.trainer_spec = _message(trainer, TRAINER_FIELDS, f"{where}: trainer_spec")
    model.normalizer_spec = _message(normalizer, NORMALIZER_FIELDS, f"{where}: normalizer_spec")
    if model.trainer_spec["model_type"] not in MODEL_TYPES:
        raise SentencePieceModelError(f"{where}: trainer_spec.model_type is {model.trainer_spec['model_type']}, "
                                      "not one of unigram=1, bpe=2, word=3, char=4")
    return model


def load_model(path: str | os.PathLike) -> ModelProto:
    """Read a SentencePiece ``.model`` file."""
    path = Path(path)
    return parse_model(path.read_bytes(), str(path))


# -- writing -------------------------------------------------------------------------------------------------


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative ints as two's complement, ten bytes, as protobuf writes int32 / int64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _put(number: int, wire: int, payload: bytes) -> bytes:
    key = _put_varint(number << 3 | wire)
    return key + (_put_varint(len(payload)) + payload if wire == 2 else payload)


def _encode_message(values: dict, table: dict) -> bytes:
    """Encode a settings message; fields equal to their default are left out, as protobuf does for unset ones."""
    out = b""
    for number, (name, kind, default) in sorted(table.items()):
        value = values.get(name, default)
        if kind == "strs":
            out += b"".join(_put(number, 2, v.encode("utf-8")) for v in value or [])
        elif value == default and kind != "bytes":
            continue
        elif kind == "str":
            out += _put(number, 2, value.encode("utf-8"))
        elif kind == "bytes":
            out += _put(number, 2, value) if value else b""
        elif kind == "float":
            out += _put(number, 5, struct.pack("<f", value))
        else:
            out += _put(number, 0, _put_varint(int(value)))
    return out


def serialize_model(model: ModelProto) -> bytes:
    """A ModelProto as the bytes of a ``.model`` file SentencePiece loads."""
    out = b""
    for p in model.pieces:
        body = _put(1, 2, p.piece.encode("utf-8")) + _put(2, 5, struct.pack("<f", p.score))
        out += _put(1, 2, body + (_put(3, 0, _put_varint(p.type)) if p.type != NORMAL else b""))
    out += _put(2, 2, _encode_message(model.trainer_spec, TRAINER_FIELDS))
    out += _put(3, 2, _encode_message(model.normalizer_spec, NORMALIZER_FIELDS))
    if model.denormalizer_spec is not None:
        out += _put(5, 2, _encode_message(model.denormalizer_spec, NORMALIZER_FIELDS))
    return out
