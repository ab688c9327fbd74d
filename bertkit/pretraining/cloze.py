"""A cloze set from held-out text (one content word of a sentence masked, the answer one vocabulary token) and its
score: top-1 / top-5 accuracy of a masked-LM's fill-mask, overall and per part of speech.

No part-of-speech tagger is installed here (nltk's data cannot be downloaded), so content words are found with a
closed-class word list (determiners, pronouns, prepositions, conjunctions, auxiliaries, ...) and the part of speech
is guessed from the neighbouring words (a modal or "to" before: verb; "very" before: adjective; a determiner before
and punctuation after: noun) and else from the suffix (``-ly`` adverb, ``-tion`` noun, ``-ous`` adjective, a plural
``-s`` noun, ...); "other" where no rule applies. It is a rough split, good for comparing models, not a tagger.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..textio import read_text
from .fill_mask import fill_mask

# closed-class words (and the commonest light verbs / adverbs): never the answer of a cloze item
STOP_WORDS = frozenset("""
a an the this that these those some any each every either neither no all both few many much more most other another
such what which who whom whose whatever whichever whoever i me my mine myself we us our ours ourselves you your yours
yourself yourselves he him his himself she her hers herself it its itself they them their theirs themselves one ones
about above across after against along among around at before behind below beneath beside besides between beyond by
down during except for from in inside into like near of off on onto out outside over past since through throughout
till to toward towards under underneath until up upon via with within without and but or nor so yet if then else
because although though while whereas unless whether than as when where why how whenever wherever however therefore
thus hence also too very just only even still already again ever never not now here there instead rather quite
be am is are was were been being have has had having do does did doing done will would shall should can could may
might must ought get gets got make makes made let lets say says said go goes went gone use used uses using
yes ok okay etc per ie eg vs mr mrs ms dr st
""".split())
# suffix → part of speech, longest first (a guess: the only tagger here is this table)
SUFFIX_TAGS = (("ically", "adverb"), ("ably", "adverb"), ("ly", "adverb"),
               ("ization", "noun"), ("ation", "noun"), ("tion", "noun"), ("sion", "noun"), ("ment", "noun"),
               ("ness", "noun"), ("ity", "noun"), ("ism", "noun"), ("ist", "noun"), ("ance", "noun"),
               ("ence", "noun"), ("ship", "noun"), ("hood", "noun"), ("er", "noun"), ("or", "noun"),
               ("ous", "adjective"), ("ful", "adjective"), ("ive", "adjective"), ("able", "adjective"),
               ("ible", "adjective"), ("less", "adjective"), ("ical", "adjective"), ("ic", "adjective"),
               ("al", "adjective"), ("ish", "adjective"),
               ("izes", "verb"), ("ize", "verb"), ("ized", "verb"), ("ise", "verb"), ("ify", "verb"),
               ("ate", "verb"), ("ing", "verb"), ("ed", "verb"),
               ("ss", "other"), ("us", "other"), ("is", "other"), ("ies", "noun"), ("s", "noun"))  # plurals
VERB_CUES = frozenset("will would shall should can could may might must cannot to not never don't doesn't didn't "
                      "won't can't couldn't wouldn't shouldn't".split())
NOUN_CUES = frozenset("of is was are were has have".split())
DETERMINERS = frozenset("the a an this that these those my your his her its our their every each no".split())
DEGREE_WORDS = frozenset("very too so quite rather really extremely more most less least".split())
_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = "\"'()[]{}<>,.;:!?`*_“”‘’"


@dataclass
class ClozeItem:
    """One sentence with one content word masked."""

    text: str  # the sentence, the word replaced by the mask token
    answer: str  # the vocabulary token the mask stands for
    word: str  # the word as the sentence wrote it
    pos: str  # the part of speech guessed from its neighbours and suffix
    line: int  # the sentence's line in the corpus file (1-based)


def part_of_speech(word: str, before: str = "", after: str = "") -> str:
    """The part of speech the neighbours suggest (``before``: the previous word; ``after``: the text that follows),
    else the word's suffix; "other" where no rule applies."""
    before, follows = before.lower().strip(_EDGE_PUNCTUATION), after.split()[0].lower() if after.split() else ""
    punctuation_next = not after.strip() or after[0] in ",.;:!?)"
    if before in VERB_CUES:  # can go, to see, doesn't deserve
        return "verb"
    if before in DEGREE_WORDS and not word.lower().endswith("ly"):  # very good, too long
        return "adjective"
    if before in DETERMINERS and punctuation_next or follows in NOUN_CUES:  # the end., idea of, film is
        return "noun"
    lower = word.lower()
    tag = next((tag for suffix, tag in SUFFIX_TAGS if lower.endswith(suffix) and len(lower) > len(suffix) + 2),
               "other")
    return "noun" if tag == "other" and punctuation_next else tag  # a clause mostly ends on a noun


def held_out_sentences(path: str | os.PathLike, held_out_fraction: float = 0.0) -> list[tuple[int, str]]:
    """(line number, sentence) of a corpus file (a sentence a line, blank lines between documents): every
    document, or with ``held_out_fraction`` the documents pretraining holds out with that ``eval_fraction``."""
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    documents: list[list[tuple[int, str]]] = [[]]
    for number, line in enumerate(read_text(path).split("\n"), start=1):  # numbered as an editor shows them
        for piece in line.splitlines() or [""]:  # documents as pretraining reads them (splitlines: \x85 too)
            if piece.strip():
                documents[-1].append((number, piece.strip()))
            elif documents[-1]:
                documents.append([])
    documents = [d for d in documents if d]
    # run_pretraining's rule (split_documents): every k-th document, the first included, k = round(1 / fraction)
    every = max(2, round(1 / held_out_fraction)) if held_out_fraction else 1
    return [sentence for document in documents[::every] for sentence in document]


def is_prose(sentence: str) -> bool:
    """A complete sentence of 8–40 words, mostly alphabetic (no code, tables or lists)."""
    words = _WORD.findall(sentence)
    alphabetic = sum(w.strip(_EDGE_PUNCTUATION).isalpha() for w in words)
    return 8 <= len(words) <= 40 and alphabetic >= 0.8 * len(words) and sentence[-1] in ".!?"


def content_word_spans(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of each word that may be masked: alphabetic, ≥ 3 letters, not a stop word, not an acronym."""
    spans = []
    for match in _WORD.finditer(sentence):  # (start, end) of the word inside its punctuation
        word = match.group().strip(_EDGE_PUNCTUATION)
        if len(word) >= 3 and word.isalpha() and word.isascii() and not word.isupper() \
                and word.lower() not in STOP_WORDS:
            start = match.start() + match.group().index(word)
            spans.append((start, start + len(word)))
    return spans


def single_token_answer(tokenizer, sentence: str, start: int, end: int) -> str | None:
    """The one token the word at ``sentence[start:end]`` is, where masking it changes exactly that token."""
    masked = sentence[:start] + tokenizer.mask_token + sentence[end:]
    original, replaced = tokenizer.tokenize(sentence), tokenizer.tokenize(masked)
    if len(original) != len(replaced):
        return None
    differ = [i for i, (a, b) in enumerate(zip(original, replaced, strict=True)) if a != b]
    if len(differ) != 1 or replaced[differ[0]] != tokenizer.mask_token:
        return None
    answer = original[differ[0]]
    return None if answer == tokenizer.unk_token or answer in tokenizer.all_special_tokens else answer


def build_cloze(sentences: list[tuple[int, str]], tokenizer, n: int = 500, seed: int = 0,
                max_tokens: int = 126) -> list[ClozeItem]:
    """Up to ``n`` items, one per distinct prose sentence, in an order and with words drawn from ``seed``."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    rng = random.Random(seed)
    seen: set[str] = set()
    distinct = [(number, s) for number, s in sentences if not (s in seen or seen.add(s))]  # first occurrences
    rng.shuffle(distinct)
    items: list[ClozeItem] = []
    for number, sentence in distinct:
        if len(items) == n:
            break
        if not is_prose(sentence) or len(tokenizer.tokenize(sentence)) > max_tokens:
            continue
        spans = content_word_spans(sentence)
        rng.shuffle(spans)
        for start, end in spans:
            if answer := single_token_answer(tokenizer, sentence, start, end):
                word, before = sentence[start:end], sentence[:start].split()
                pos = part_of_speech(word, before[-1] if before else "", sentence[end:])
                items.append(ClozeItem(sentence[:start] + tokenizer.mask_token + sentence[end:], answer, word, pos,
                                       number))
                break
    if not items:
        raise ValueError("no sentence gave a cloze item: the text needs prose sentences of 8–40 words whose content "
                         "words are single tokens of the vocabulary")
    return items


def cloze_jsonl(items: list[ClozeItem]) -> str:
    """The items as JSON lines (text, answer, pos, word, line)."""
    return "".join(json.dumps({"text": i.text, "answer": i.answer, "pos": i.pos, "word": i.word, "line": i.line},
                              ensure_ascii=False) + "\n" for i in items)


def read_cloze(path: str | os.PathLike, tokenizer, max_tokens: int) -> list[dict]:
    """The cloze file's items, each checked against this tokenizer (a bad line is named, with why)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such cloze file: {path}")
    items = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where} is not JSON: {error}") from None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) \
                or not isinstance(item.get("answer"), str):
            raise ValueError(f"{where}: each line needs a JSON object with \"text\" and \"answer\" strings")
        tokens = tokenizer.tokenize(item["text"])
        if tokens.count(tokenizer.mask_token) != 1:
            raise ValueError(f"{where}: the text must hold exactly one {tokenizer.mask_token}, it holds "
                             f"{tokens.count(tokenizer.mask_token)}")
        answer = item["answer"]
        if answer not in tokenizer.vocab or answer in tokenizer.all_special_tokens:
            raise ValueError(f"{where}: the answer {answer!r} is not one token of the model's vocabulary (it "
                             f"tokenizes as {tokenizer.tokenize(answer)}); a cloze answer must be a single token")
        if len(tokens) + 2 > max_tokens:
            raise ValueError(f"{where}: the text is {len(tokens) + 2} tokens, over the model's {max_tokens}")
        items.append({**item, "pos": str(item.get("pos", "other")), "line": number})
    if not items:
        raise ValueError(f"{path} holds no cloze items")
    return items


def accuracy(results: list[dict]) -> dict[str, float | int]:
    """Items, top-1 and top-5 accuracy of scored items."""
    return {"items": len(results), "top1": sum(r["top1"] for r in results) / len(results),
            "top5": sum(r["top5"] for r in results) / len(results)}


@torch.no_grad()
def score_cloze(model: torch.nn.Module, tokenizer, items: list[dict]) -> dict:
    """Top-1 / top-5 accuracy of the model's fill-mask on the items, overall and per part of speech, with each
    item's result."""
    results = []
    for item in items:
        candidates = fill_mask(model, tokenizer, item["text"], top_k=5)[0]
        tokens = [c.token for c in candidates]
        results.append({"line": item["line"], "answer": item["answer"], "pos": item["pos"], "predicted": tokens,
                        "top1": tokens[0] == item["answer"], "top5": item["answer"] in tokens})
    by_pos = {pos: accuracy([r for r in results if r["pos"] == pos]) for pos in sorted({r["pos"] for r in results})}
    return {**accuracy(results), "by_pos": by_pos, "results": results}
