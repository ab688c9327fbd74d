"""Query ↔ passage pairs from installed real text, for retrieval benchmarks and bi-encoder training.

The Python 3.11 documentation (reStructuredText sources, see bertkit.corpora) has thousands of sections; a
section's title is a query and the prose that opens the section is its passage — the FAQ's titles are real
questions and their passages the answers. Titles that occur more than once ("Examples", "Notes") are dropped,
since no single passage answers them. Splits are by source file, so that no page is on both sides.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HEADING_CHARS = set("=-~^*#\"+'`:._")
_ROLE = re.compile(r":[\w:.-]+:`([^`]*)`")  # :func:`os.path.join`, :ref:`text <target>`
_LINK = re.compile(r"`([^`<]*?)\s*(?:<[^>]*>)?`__?")  # `text <https://…>`_, `text`_
_FOOTNOTE = re.compile(r"\s*\[[#*\w-]*\]_")
_FIELD = re.compile(r"^:[\w-]+:(\s|$)")  # :tocdepth: 2 — metadata, not prose
MIN_PASSAGE_WORDS = 25
MAX_PASSAGE_WORDS = 120


@dataclass(frozen=True)
class Pair:
    """A query, the passage that answers it, and where it comes from (for splitting by page)."""

    query: str
    passage: str
    source: str


def clean_inline(text: str) -> str:
    """reStructuredText inline markup → the words a reader sees."""
    def role(match: re.Match) -> str:
        inner = match.group(1)
        inner = inner.split("<")[0].strip() if "<" in inner and inner.endswith(">") else inner
        return inner.lstrip("~!")

    text = _FOOTNOTE.sub("", text)
    text = _ROLE.sub(role, text)
    text = text.replace("``", "")
    text = _LINK.sub(lambda m: m.group(1), text)
    text = re.sub(r"\*\*(.+?)\*\*|\*(.+?)\*", lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


def _is_underline(line: str, title: str) -> bool:
    stripped = line.strip()
    return (len(stripped) >= max(3, len(title.strip())) and len(set(stripped)) == 1
            and stripped[0] in HEADING_CHARS and line == line.lstrip())


def rst_sections(text: str) -> list[tuple[str, str]]:
    """(title, opening prose) of each section of a reStructuredText document, markup removed.

    The prose is the section's first paragraphs (not directives, literal blocks, tables or lists), joined until
    it has ``MIN_PASSAGE_WORDS`` words, and cut at ``MAX_PASSAGE_WORDS``; a section with too little is skipped.
    """
    lines = text.split("\n")
    headings = [i for i in range(len(lines) - 1)
                if lines[i].strip() and lines[i] == lines[i].lstrip() and not _is_underline(lines[i], "")
                and _is_underline(lines[i + 1], lines[i])]
    sections = []
    for n, start in enumerate(headings):
        end = headings[n + 1] - 1 if n + 1 < len(headings) else len(lines)
        if n + 1 < len(headings) and _is_underline(lines[end - 1], lines[headings[n + 1]]):
            end -= 1  # the next title's overline
        words = []
        for paragraph in _paragraphs(lines[start + 2 : end]):
            words += clean_inline(paragraph).split()
            if len(words) >= MIN_PASSAGE_WORDS:
                break
        title = clean_inline(lines[start])
        if len(words) >= MIN_PASSAGE_WORDS and len(title) >= 3:
            sections.append((title, " ".join(words[:MAX_PASSAGE_WORDS])))
    return sections


def _paragraphs(lines: list[str]) -> Iterable[str]:
    """Prose paragraphs: blocks of unindented lines that are not directives, fields, lists, tables or rules."""
    block: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            block.append(line)
            continue
        if block and _is_prose(block):
            yield " ".join(x.strip() for x in block).removesuffix("::").rstrip(":")
        block = []


def _is_prose(block: list[str]) -> bool:
    first = block[0]
    return (first == first.lstrip() and not first.startswith((".. ", "..\t", "* ", "- ", "+", "|", ">>>", "#."))
            and not _FIELD.match(first) and not re.match(r"^\d+\.\s", first)
            and not all(_is_underline(x, "") for x in block) and any(c.isalpha() for c in first))


def docs_pages(files: Iterable[Path] | None = None) -> list[tuple[Path, str]]:
    """(file, page name) of the Python docs' pages (or the given files), release notes left out."""
    if files is None:
        from .. import corpora

        files = corpora.python_docs_files()
    pages = []
    for path in files:
        parts = path.parts  # the page's name below _sources/, the same on every machine
        source = "/".join(parts[parts.index("_sources") + 1:]) if "_sources" in parts else path.name
        if "whatsnew" not in source and "changelog" not in source:  # release notes: titles are version numbers
            pages.append((path, source))
    return pages


def rst_prose(text: str, min_words: int = 8) -> list[str]:
    """Every prose paragraph of a reStructuredText document with at least ``min_words`` words, markup removed."""
    lines = text.split("\n")
    rules = {i for i, line in enumerate(lines) if _is_underline(line, "")}  # over- and underlines
    titles = {i - 1 for i in rules if i and lines[i - 1].strip() and i - 1 not in rules}
    body = ["" if i in rules or i in titles else line for i, line in enumerate(lines)]
    paragraphs = (clean_inline(paragraph) for paragraph in _paragraphs(body))
    return [paragraph for paragraph in paragraphs if len(paragraph.split()) >= min_words]


def python_docs_prose(sources: set[str], files: Iterable[Path] | None = None) -> list[str]:
    """The prose paragraphs of the named Python docs pages (e.g. a training split's ``Pair.source`` s)."""
    return [paragraph for path, source in docs_pages(files) if source in sources
            for paragraph in rst_prose(path.read_text(encoding="utf-8"))]


def python_docs_pairs(files: Iterable[Path] | None = None) -> list[Pair]:
    """Section title ↔ opening prose over the Python docs (or the given .rst.txt files), titles made unique."""
    pairs = []
    for path, source in docs_pages(files):
        pairs += [Pair(title, passage, source) for title, passage in rst_sections(path.read_text(encoding="utf-8"))]
    title_counts = Counter(p.query.lower() for p in pairs)
    passage_counts = Counter(p.passage for p in pairs)
    return [p for p in pairs if title_counts[p.query.lower()] == 1 and passage_counts[p.passage] == 1]


def split_by_source(pairs: list[Pair], test_percent: int = 30, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """(train, test) with every source file wholly on one side, drawn by a hash of its name (stable, seeded)."""
    def is_test(source: str) -> bool:
        return zlib.crc32(f"{seed}:{Path(source).as_posix()}".encode()) % 100 < test_percent

    train = [p for p in pairs if not is_test(p.source)]
    test = [p for p in pairs if is_test(p.source)]
    return train, test
