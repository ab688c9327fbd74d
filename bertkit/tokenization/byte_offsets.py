"""Character spans of byte-level tokens: where in the text each token came from (``return_offsets_mapping``).

A byte-level token covers some UTF-8 bytes of one word, possibly part of a character (``😀`` is four tokens when no
merge joined its bytes): every token gets the span of the characters its bytes belong to, as in the ``tokenizers``
library. A space added by ``add_prefix_space`` is not in the text: it shares the span of the character after it.

RoBERTa (``trim_offsets``) then moves each token's start past its leading space (``Ġworld`` → ``world``), except
for the prefix space of the first token, which the text never held.
"""

from __future__ import annotations

from .byte_level import bytes_to_unicode

Span = tuple[int, int]
_SPACE = bytes_to_unicode()[ord(" ")]  # "Ġ"


def piece_spans(word: str, pieces: list[str], start: int, prefixed: bool) -> list[Span]:
    """Spans in the text of a word's byte-character pieces.

    ``start``: the text position of the word's first character; ``prefixed``: that character is the space
    ``add_prefix_space`` added, which takes the span of the character it was added before (the one at ``start``),
    as the ``tokenizers`` library aligns it.
    """
    begins: list[int] = []  # for each byte of the word, where its character begins and ends in the text
    ends: list[int] = []
    for index, char in enumerate(word):
        added = prefixed and index == 0
        position = start if added else start + index - prefixed
        width = len(char.encode("utf-8"))
        begins += [position] * width
        ends += [position + 1] * width
    spans: list[Span] = []
    byte = 0
    for piece in pieces:  # a byte character stands for one byte
        spans.append((begins[byte], ends[byte + len(piece) - 1]))
        byte += len(piece)
    return spans


def trim_leading_spaces(tokens: list[str], spans: list[Span], add_prefix_space: bool) -> list[Span]:
    """RoBERTa's ``trim_offsets``: a token's span starts after its leading (or ends before its trailing) spaces."""
    out = []
    for i, (token, (begin, end)) in enumerate(zip(tokens, spans, strict=True)):
        leading = len(token) - len(token.lstrip(_SPACE))
        trailing = len(token) - len(token.rstrip(_SPACE))  # a token of spaces only counts them both ways
        if leading and (i == 0 or begin == 0) and add_prefix_space and leading == 1:
            leading = 0  # the first token's space is the one the tokenizer added, already zero-width
        if leading:
            begin = min(begin + leading, end)
        if trailing and end >= trailing:
            end = max(end - trailing, begin)
        out.append((begin, end))
    return out
