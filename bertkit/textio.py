"""Reading users' text files strictly: UTF-8 (with or without the BOM Excel writes); any other encoding is an error
naming the file, the byte and its offset — never bytes silently replaced or dropped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def _not_utf8(path: Path, error: UnicodeDecodeError, offset: int, where: str = "") -> ValueError:
    byte = error.object[error.start]
    return ValueError(f"{path} is not UTF-8: byte 0x{byte:02x} at offset {offset}{where} ({error.reason}); save "
                      "the file as UTF-8")


def read_text(path: str | os.PathLike) -> str:
    """The whole file's text."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:  # the line too: what an editor shows, where an offset is hard to find
        line = error.object.count(b"\n", 0, error.start) + 1
        raise _not_utf8(path, error, error.start, f", line {line}") from None


def iter_lines(path: str | os.PathLike) -> Iterator[str]:
    """The file's lines (with their line ends), read one at a time."""
    path = Path(path)
    offset = 0
    with path.open("rb") as file:
        for number, raw in enumerate(file, 1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise _not_utf8(path, error, offset + error.start, f", line {number}") from None
            offset += len(raw)


def read_texts(path: str | os.PathLike) -> list[str]:
    """A one-text-a-line file's texts. Outputs keep row i = line i, so a blank line is refused (naming it) rather
    than skipped, which would shift every row after it."""
    lines = read_text(path).splitlines()
    if not lines:
        raise ValueError(f"{path} holds no text: write one text a line")
    blank = [number for number, line in enumerate(lines, 1) if not line.strip()]
    if blank:
        raise ValueError(f"{path} line {blank[0]} is blank ({len(blank)} blank line(s)): every line is one text; "
                         "remove them or put text on them")
    return lines
