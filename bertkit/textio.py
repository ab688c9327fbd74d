"""Reading users' text files strictly: UTF-8 (with or without the BOM Excel writes); any other encoding is an error
naming the file, the byte and its offset — never bytes silently replaced or dropped. Data rows (.csv / .tsv /
.jsonl) are read here too, for every command that takes a data file (fine-tuning, bi-encoder training,
distillation)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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


def read_numbered_rows(path: str | os.PathLike) -> list[tuple[int, dict[str, Any]]]:
    """Each row with the file line it starts on (what an editor shows, for messages); a CSV row with more fields
    than the header is refused (an unquoted comma in a text would otherwise drop the rest of the row)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".jsonl", ".json"):
        raise ValueError(f"{path}: unknown data format {suffix!r}; use .csv, .tsv or .jsonl")
    text = read_text(path)
    if suffix in (".csv", ".tsv"):
        return _csv_rows(path, text, "\t" if suffix == ".tsv" else ",")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number} is not a JSON object: {error}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number} is not a JSON object")
        rows.append((number, row))
    return rows


def _csv_rows(path: Path, text: str, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    rows, start = [], reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted field may span lines: the row starts where it starts
        if not cells:  # a blank line, as csv.DictReader skips it
            continue
        if len(cells) > len(header):
            name = "tab" if delimiter == "\t" else "comma"
            raise ValueError(f"{path} line {line} has {len(cells)} fields, the header {len(header)}: quote a text "
                             f"that holds a {name} (\"a, b\")")
        # fewer fields: the missing ones are None (as csv.DictReader), and the check of that field names the line
        rows.append((line, {name: cells[i] if i < len(cells) else None for i, name in enumerate(header)}))
    return rows
