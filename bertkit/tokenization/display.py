"""Tokens shown in a terminal: ``bertkit tokenize`` and ``bertkit demo`` print them above their ids."""

from __future__ import annotations

import unicodedata


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_tokens(tokens: list[str], ids: list[int]) -> str:
    """Tokens above their ids, each column as wide as its widest entry."""
    widths = [max(display_width(t), len(str(i))) for t, i in zip(tokens, ids, strict=True)]
    top = " ".join(t + " " * (w - display_width(t)) for t, w in zip(tokens, widths, strict=True))
    bottom = " ".join(str(i).ljust(w) for i, w in zip(ids, widths, strict=True))
    return f"{top.rstrip()}\n{bottom.rstrip()}"
