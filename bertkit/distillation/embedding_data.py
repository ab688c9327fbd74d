"""The data of embedding distillation: unlabeled training sentences, and dev / test retrieval pairs (a query and the
passage that answers it) — the user's files where given (``train_file``, ``dev_file``, ``test_file``), else the
installed Python-docs pages (``bench/retrieval.py``'s split) and Rotten Tomatoes reviews.

``train_file``: a text file of one sentence a line (blank lines skipped), or a .csv / .tsv / .jsonl file whose every
text cell is a sentence. ``dev_file`` / ``test_file``: .csv / .tsv / .jsonl rows of (query, passage), as
``bertkit train-embeddings`` reads pairs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from .. import corpora
from ..encoding.pairs import Pair, python_docs_pairs, python_docs_prose, split_by_source
from ..encoding.training import read_examples
from ..textio import read_numbered_rows, read_text
from .config import DistillConfig

INSTALLED_TEXTS = "installed: the training pages of the Python docs (titles, passages, prose) + Rotten Tomatoes reviews"
INSTALLED_PAIRS = "installed: Python-docs pages ({} split)"


@dataclass
class EmbeddingData:
    """Training sentences, dev and test pairs, and where each came from (reported in results.json)."""

    texts: list[str]
    dev: list[Pair]
    test: list[Pair]
    sources: dict[str, str] = field(default_factory=dict)


def training_texts(train_pairs: list[Pair], max_texts: int) -> list[str]:
    """Unlabeled sentences: the training pages' titles and passages, then every prose paragraph of those pages,
    then Rotten Tomatoes reviews (distinct); never a dev or test page's text."""
    texts = [t for p in train_pairs for t in (p.query, p.passage)]
    texts += python_docs_prose({p.source for p in train_pairs})
    texts += [text for _, text in corpora.rotten_tomatoes_reviews()]
    return list(dict.fromkeys(t for t in texts if t.strip()))[:max_texts]


def read_sentences(path: str | Path) -> list[str]:
    """A file's sentences, distinct, in order: its lines (.txt and any other text file), or every text cell of a
    .csv / .tsv / .jsonl file's rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such train_file: {path}")
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
        texts = [v for _, row in read_numbered_rows(path) for v in row.values() if isinstance(v, str)]
    else:
        texts = read_text(path).splitlines()
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not texts:
        raise ValueError(f"train_file {path} holds no text: write one sentence a line")
    return texts


def read_pairs(path: str | Path) -> list[Pair]:
    """(query, passage) rows of a .csv / .tsv / .jsonl file; further columns are refused."""
    rows = read_examples(path, scored=False)
    if len(rows[0]) != 2:
        raise ValueError(f"{path}: a retrieval pair is (query, passage), got {len(rows[0])} columns")
    return [Pair(query, passage, f"{path}:{number}") for number, (query, passage) in enumerate(rows, 1)]


@cache
def installed_splits() -> tuple[tuple[Pair, ...], tuple[Pair, ...], tuple[Pair, ...]]:
    """(train, dev, test) pairs of the installed Python-docs pages, split by page."""
    train, test = split_by_source(python_docs_pairs())
    train, dev = split_by_source(train, test_percent=15, seed=1)
    return tuple(train), tuple(dev), tuple(test)


def load_embedding_data(config: DistillConfig) -> EmbeddingData:
    """The user's files where given, the installed data for the rest (read only when needed)."""
    if config.train_file:
        texts = read_sentences(config.train_file)
        if len(texts) > config.max_texts:
            print(f"train_file {config.train_file}: the first {config.max_texts:,} of {len(texts):,} distinct "
                  "sentences (max_texts)", file=sys.stderr)
        texts, train_from = texts[:config.max_texts], str(config.train_file)
    else:
        texts, train_from = training_texts(list(installed_splits()[0]), config.max_texts), INSTALLED_TEXTS
    dev = read_pairs(config.dev_file) if config.dev_file else list(installed_splits()[1])
    test = read_pairs(config.test_file) if config.test_file else list(installed_splits()[2])
    sources = {"train": train_from, "dev": str(config.dev_file or INSTALLED_PAIRS.format("dev")),
               "test": str(config.test_file or INSTALLED_PAIRS.format("test"))}
    return EmbeddingData(texts, dev, test, sources)
