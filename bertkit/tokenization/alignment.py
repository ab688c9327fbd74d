"""Character offsets: which span of the original text each token came from.

The fast path forgets positions; this slower path redoes the same steps while keeping them. Cleaning and CJK
padding are per character, so chunk spans are exact. Inside a chunk, lower-casing and accent stripping are
aligned character by character when that reproduces the chunk's normalisation (nearly always); when it does not
(NFC composition, a context-dependent lower-case such as the Greek final sigma), every word of the chunk gets the
chunk's whole span.
"""

from __future__ import annotations

from collections.abc import Callable

from .basic import _TABLES, normalize_chunk

Span = tuple[int, int]


def chunks_with_spans(text: str, tokenize_chinese_chars: bool) -> list[tuple[str, list[int]]]:
    """Steps 1-2 of the BasicTokenizer, returning each chunk with the original index of each of its characters."""
    table = _TABLES[tokenize_chinese_chars]
    chunks: list[tuple[str, list[int]]] = []
    chars: list[str] = []
    where: list[int] = []

    def close() -> None:
        if chars:
            chunks.append(("".join(chars), where.copy()))
            chars.clear()
            where.clear()

    for i, char in enumerate(text):
        entry = table[ord(char)]
        if entry is None:  # a deleted control character: its neighbours join
            continue
        if entry.isspace():
            close()
        elif len(entry) > 1:  # a padded CJK ideograph: a chunk of its own
            close()
            chunks.append((char, [i]))
        else:
            chars.append(entry)
            where.append(i)
    close()
    return chunks


def _normalized_positions(chunk: str, positions: list[int], lower_case: bool, accents: bool | None) -> list[int]:
    """Original index for each character of the normalised chunk, or [] when no 1-to-1 alignment exists."""
    normalized = normalize_chunk(chunk, lower_case, accents)
    mapped: list[int] = []
    for char, position in zip(chunk, positions, strict=True):
        mapped.extend([position] * len(normalize_chunk(char, lower_case, accents)))
    return mapped if len(mapped) == len(normalized) else []


def token_spans(
    chunk: str,
    positions: list[int],
    words: list[str],
    pieces_of: Callable[[str], list[str]],
    lower_case: bool,
    accents: bool | None,
    unk_token: str,
) -> list[tuple[str, Span]]:
    """The chunk's tokens, each with its (start, end) span in the original text."""
    whole = (positions[0], positions[-1] + 1)
    mapped = _normalized_positions(chunk, positions, lower_case, accents)
    normalized = normalize_chunk(chunk, lower_case, accents) if mapped else ""
    out: list[tuple[str, Span]] = []
    cursor = 0
    for word in words:
        found = normalized.find(word, cursor) if mapped else -1
        if found < 0:
            out.extend((piece, whole) for piece in pieces_of(word))
            continue
        cursor = found + len(word)
        pieces = pieces_of(word)
        if pieces == [unk_token]:
            out.append((unk_token, (mapped[found], mapped[cursor - 1] + 1)))
            continue
        start = found
        for piece in pieces:
            length = len(piece) - 2 if start > found and piece.startswith("##") else len(piece)
            out.append((piece, (mapped[start], mapped[start + length - 1] + 1)))
            start += length
    return out
