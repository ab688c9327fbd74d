"""Shared by the fine-tuning tests: a tiny random BERT over a small vocabulary, and synthetic labelled data whose
labels a model can learn in a few dozen steps (so mechanics are tested in seconds)."""

import random

import pytest
import torch

from bertkit.config import BertConfig
from bertkit.model import BertModel
from bertkit.tokenization import BertTokenizer

POSITIVE = ["good", "great", "fun", "superb", "lovely"]
NEGATIVE = ["bad", "awful", "dull", "boring", "weak"]
FILLER = ["the", "film", "was", "a", "plot", "and", "really", "movie", "it", "is", "quite", "story", "cast", "of"]
PEOPLE = ["alice", "bob", "carol"]
PLACES = ["paris", "rome", "oslo"]
WORDS = POSITIVE + NEGATIVE + FILLER + PEOPLE + PLACES + ["new", "york", "visited", "in", "met", "lives", "who",
                                                         "where", "."]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_tokenizer() -> BertTokenizer:
    vocab = SPECIALS + WORDS + ["##s", "x", "##x"] + [str(i) for i in range(10)]
    return BertTokenizer(vocab={t: i for i, t in enumerate(vocab)})


def save_tiny_model(folder, positions: int = 64, seed: int = 0):
    """A random 2-layer BERT (hidden 32) over the tiny vocabulary, saved with its tokenizer."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size, hidden_size=32, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=positions)
    BertModel(config).save_pretrained(folder, tokenizer=tokenizer)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def sentiment_examples(n: int, seed: int = 0, pairs: bool = False) -> list[dict]:
    """Filler sentences with one sentiment word: the label is the word's side."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        positive = rng.random() < 0.5
        words = rng.choices(FILLER, k=rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if positive else NEGATIVE))
        out.append({"text": " ".join(words), "label": "pos" if positive else "neg"})
    return out


def ner_examples(n: int, seed: int = 0) -> list[dict]:
    """Sentences naming people (PER) and places (LOC, 'new york' as a two-word LOC)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(["PER", "LOC", "LOC2", "O"])
            if kind == "PER":
                tokens += [rng.choice(PEOPLE), rng.choice(["met", "visited"])]
                tags += ["B-PER", "O"]
            elif kind == "LOC":
                tokens += ["in", rng.choice(PLACES)]
                tags += ["O", "B-LOC"]
            elif kind == "LOC2":
                tokens += ["in", "new", "york"]
                tags += ["O", "B-LOC", "I-LOC"]
            else:
                tokens += rng.choices(FILLER, k=2)
                tags += ["O", "O"]
        out.append({"tokens": tokens, "tags": tags})
    return out


def qa_examples(n: int, seed: int = 0, filler: int = 6) -> list[dict]:
    """"who" / "where" questions over contexts with one person and one place among ``filler`` filler words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES + ["new york"])
        words = rng.choices(FILLER, k=filler)
        where = rng.randrange(len(words) + 1)
        words[where:where] = [person, "visited", place, "."]
        context = " ".join(words)
        ask_person = rng.random() < 0.5
        answer = person if ask_person else place
        start = context.index(f"{person} visited {place}") + (0 if ask_person else len(person) + 9)
        out.append({"question": "who" if ask_person else "where", "context": context, "answer": answer,
                    "answer_start": start})
    return out
