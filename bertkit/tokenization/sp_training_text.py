"""What both SentencePiece trainers (Unigram: ``unigram_training.py``, BPE: ``sp_bpe_training.py``) share: the
words of the normalised corpus with its rare characters made unknown, the rules for a valid piece, the special
pieces and byte fallback's 256 byte pieces."""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

from .sentencepiece_model import BYTE, CONTROL, UNKNOWN, ModelProto, Piece
from .sp_normalizer import SPACE_SYMBOL, Normalizer

UNK_CHAR = "\u2585"
META_PIECES = (("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL))


def script(char: str) -> str:
    """A character's script for the one-script rule: letters by their Unicode name, marks inherit, the rest Common."""
    category = unicodedata.category(char)
    if category.startswith("M"):
        return "Inherited"
    if not category.startswith("L"):
        return "Common"
    name = unicodedata.name(char, "UNKNOWN").split()[0]
    return "CJK" if name in ("CJK", "HIRAGANA", "KATAKANA", "KANGXI") or char == "\u30fc" else name


def is_valid_piece(piece: str, max_length: int = 16, split_digits: bool = False) -> bool:
    """SentencePiece's rules for a piece: no unknown character, ``▁`` only first, one script, digits apart."""
    if not piece or len(piece) > max_length or UNK_CHAR in piece or " " in piece or SPACE_SYMBOL in piece[1:]:
        return False
    previous = None
    for char in piece:
        if char == SPACE_SYMBOL:
            continue
        if split_digits and char.isdecimal() and len(piece) > 1:
            return False
        kind = script(char)
        kind = previous if kind == "Inherited" else kind
        if previous is not None and kind is not None and kind != previous:
            return False
        previous = kind
    return True


def count_words(lines: Iterable[str], normalizer: Normalizer, character_coverage: float) -> tuple[Counter, dict]:
    """Word frequencies of the normalised corpus (rare characters as U+2585), and the required characters.

    The keys are (word, what follows it): ``▁`` (another word) or ``\0`` (the end of the line), which the seeds
    need; ``words_of`` sums them per word.
    """
    sentences = Counter(normalizer.normalize_text(line) for line in lines)
    sentences.pop("", None)
    chars: Counter = Counter()
    for sentence, freq in sentences.items():
        for char in sentence:
            chars[char] += freq
    total, covered, required = sum(chars.values()), 0, {}
    for char, count in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered / total >= character_coverage:
            break
        covered += count
        required[char] = count
    words: Counter = Counter()
    for sentence, freq in sentences.items():
        if any(c not in required for c in sentence):
            sentence = "".join(c if c in required else UNK_CHAR for c in sentence)
        start = 0
        while start < len(sentence):
            end = sentence.find(SPACE_SYMBOL, start + 1)
            end = len(sentence) if end < 0 else end
            words[sentence[start:end], SPACE_SYMBOL if end < len(sentence) else "\0"] += freq
            start = end
    return words, required


def words_of(contexts: Counter) -> Counter:
    """Word frequencies from (word, what follows) frequencies."""
    words: Counter = Counter()
    for (word, _), freq in contexts.items():
        words[word] += freq
    return words


def add_byte_pieces(model: ModelProto, n_meta: int) -> ModelProto:
    """Byte fallback: the 256 ``<0xNN>`` pieces right after the special pieces, as SentencePiece's trainer puts them
    (an unknown character is then spelled in its UTF-8 bytes)."""
    byte_pieces = [Piece(f"<0x{b:02X}>", 0.0, BYTE) for b in range(256)]
    model.pieces = model.pieces[:n_meta] + byte_pieces + model.pieces[n_meta:]
    model.trainer_spec["byte_fallback"] = True
    model.trainer_spec["vocab_size"] = len(model.pieces)
    return model
