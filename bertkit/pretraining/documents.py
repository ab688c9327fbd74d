"""Corpus → documents → sentences.

Two input formats. ``lines`` is google-research/bert's: one sentence per line, a blank line between documents.
``raw`` is running text: blank lines still separate documents, and each document's text is split into
sentences at English and Chinese sentence-final punctuation.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from .. import textio

Document = list[str]  # its sentences, in order

# A sentence runs to . ! ? (with any closing quotes) before whitespace and a capital, digit or CJK character, or to
# Chinese 。！？；… (with closing quotes), or to the end of the text.
_SENTENCE = re.compile(r"""\S.*?(?:[.!?]["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9\u4e00-\u9fff])|[。！？；…]+[”’」』）)]*|$)""",
                       re.DOTALL)


def split_sentences(paragraph: str) -> list[str]:
    """Split running text at sentence-final punctuation (English ``.!?`` before a capital, Chinese ``。！？；…``)."""
    return [m.group().strip() for m in _SENTENCE.finditer(paragraph.strip()) if m.group().strip()]


def read_text(path: Path) -> str:
    """A corpus file's text, with a clear error for a missing or binary file."""
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    return textio.read_text(path)


def documents_from_lines(text: str) -> list[Document]:
    """google-research/bert's format: a sentence a line, documents separated by blank lines."""
    documents, current = [], []
    for line in text.splitlines():
        line = line.strip()
        if line:
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


def documents_from_raw(text: str) -> list[Document]:
    """Running text: blank-line-separated blocks are documents, split into sentences."""
    blocks = (split_sentences(" ".join(block.split())) for block in re.split(r"\n\s*\n", text))
    return [sentences for sentences in blocks if sentences]


def read_documents(paths: Iterable[str | os.PathLike], fmt: str = "lines") -> list[Document]:
    """All documents of the corpus files, in file order; refuses a corpus with no text."""
    if fmt not in ("lines", "raw"):
        raise ValueError(f"corpus format must be 'lines' or 'raw', got {fmt!r}")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no corpus files given")
    documents: list[Document] = []
    for path in paths:
        text = read_text(path)
        documents.extend(documents_from_lines(text) if fmt == "lines" else documents_from_raw(text))
    if not documents:
        raise ValueError(f"the corpus is empty: no sentences in {', '.join(map(str, paths))}")
    return documents
