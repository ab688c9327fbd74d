"""Byte-level text (GPT-2): every string as printable characters standing for its UTF-8 bytes, and GPT-2's word split.

Why bytes: a vocabulary over the 256 byte values covers any Unicode text with no unknown token. Why a character per
byte rather than raw bytes: the BPE vocabulary and merges are stored as text (vocab.json, merges.txt), so each byte
gets a visible character: printable Latin-1 bytes stand for themselves and the rest (space, control bytes, ...)
are shifted to U+0100 and up, which is why a space shows as ``Ġ`` and a newline as ``Ċ`` in GPT-2's vocabulary.

Words come from GPT-2's pattern before bytes are mapped: English contractions, a run of letters, of digits or of
other symbols (each with one optional leading space), and whitespace runs, which leave their last space to the word
that follows (``"a  b"`` → ``"a"``, ``" "``, ``" b"``).
"""

from __future__ import annotations

from functools import lru_cache

import regex

# GPT-2's pre-tokenization pattern (openai/gpt-2 encoder.py; the same in the tokenizers library's ByteLevel). It needs
# Unicode classes (\p{L}, \p{N}), which the standard library's re lacks.
GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Each byte value → the character that stands for it (GPT-2's table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in table:  # unprintable bytes take the next free characters from U+0100 on, in byte order
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """The inverse table: a byte character → its byte value."""
    return {char: byte for byte, char in bytes_to_unicode().items()}


def alphabet() -> list[str]:
    """The 256 byte characters, in code point order (the order the ``tokenizers`` trainer gives them ids)."""
    return sorted(bytes_to_unicode().values())


def split_words(text: str) -> list[str]:
    """GPT-2's words of a text (before byte mapping); concatenated they give the text back."""
    return GPT2_PATTERN.findall(text)


_ENCODE = {chr(i): "".join(bytes_to_unicode()[b] for b in chr(i).encode("utf-8")) for i in range(128)}


def to_byte_chars(word: str) -> str:
    """A string as byte characters: its UTF-8 bytes, each written as its table character."""
    if word.isascii():  # the common case: one character per byte, looked up directly
        return "".join(map(_ENCODE.__getitem__, word))
    table = bytes_to_unicode()
    return "".join(table[b] for b in word.encode("utf-8"))


def from_byte_chars(tokens: list[str]) -> bytes:
    """Byte-character tokens → the bytes they stand for.

    A token with a character outside the table (a special token such as ``"my token"``) stands for its own UTF-8
    text, as in the ``tokenizers`` library's ByteLevel decoder.
    """
    table = unicode_to_bytes()
    out = bytearray()
    for token in tokens:
        try:
            out += bytes(table[c] for c in token)
        except KeyError:
            out += token.encode("utf-8")
    return bytes(out)
