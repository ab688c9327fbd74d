"""Documents of text → documents of tokenized :class:`Sentence` s, with the word boundaries whole-word masking needs.

Word boundaries come from WordPiece itself (a ``##`` piece continues the word before it) or, for Chinese, from
jieba: the characters of one jieba word form one word, as Chinese-BERT-wwm does with its segmenter. The token ids
are always the tokenizer's own; only the word-start flags differ.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

from ..tokenization import BertTokenizer
from .documents import Document
from .instances import Sentence

WORD_BOUNDARIES = ("wordpiece", "jieba")
SENTENCEPIECE_WORD_START = "\u2581"  # ▁: SentencePiece's mark of a piece that starts a word


def continuation_ids(tokenizer: BertTokenizer) -> frozenset[int]:
    """Ids of the tokens that continue a word: WordPiece's ``##`` pieces, else SentencePiece's pieces without the
    ``▁`` that marks a word's start (special tokens never continue one)."""
    vocab = tokenizer.get_vocab()
    if any(token.startswith("##") for token in vocab):
        return frozenset(i for token, i in vocab.items() if token.startswith("##"))
    if any(token.startswith(SENTENCEPIECE_WORD_START) for token in vocab):
        specials = set(tokenizer.all_special_tokens)
        return frozenset(i for token, i in vocab.items()
                         if not token.startswith(SENTENCEPIECE_WORD_START) and token not in specials)
    return frozenset()


def wordpiece_sentence(text: str, tokenizer: BertTokenizer, continuations: frozenset[int]) -> Sentence:
    """Token ids with word starts read off the ``##`` prefix (SentencePiece: the ``▁`` one); a sentence's first
    token always starts a word."""
    ids = tokenizer.text_to_ids(text)
    return Sentence(ids, [n == 0 or i not in continuations for n, i in enumerate(ids)])


def word_boundaries(text: str, words: list[str]) -> set[int]:
    """Character offsets in ``text`` where one of ``words`` (found in order; whitespace between is skipped) starts."""
    starts, position = set(), 0
    for word in words:
        found = text.find(word, position)
        if found < 0:
            continue  # a word the segmenter normalised; its characters then join the word before
        starts.add(found)
        position = found + len(word)
    return starts


def jieba_sentence(text: str, tokenizer: BertTokenizer, segment: Callable[[str], list[str]],
                   continuations: frozenset[int]) -> Sentence:
    """The usual token ids, with word starts where jieba's words start (and never on a ``##`` piece)."""
    ids, spans = tokenizer.text_to_ids_with_offsets(text)
    starts = word_boundaries(text, segment(text))
    return Sentence(ids, [span[0] in starts and i not in continuations for i, span in zip(ids, spans, strict=True)])


def tokenize_documents(
    documents: list[Document], tokenizer: BertTokenizer, boundaries: str = "wordpiece", progress: bool = True,
    units: list[str] | None = None, max_tokens_per_char: float | None = None,
) -> list[list[Sentence]]:
    """Every sentence tokenized; sentences with no tokens and documents with no sentences are dropped. ``units``:
    phrases / entities each made one word where they occur (ERNIE's knowledge masking, ``units.py``);
    ``max_tokens_per_char``: sentences the tokenizer cuts into more pieces per character are dropped too (text the
    vocabulary was not made for: tables, code, another script — Cramming's filter)."""
    continuations = continuation_ids(tokenizer)
    if boundaries == "jieba":
        from ..tokenization.chinese import segment

        def encode(text: str) -> Sentence:
            return jieba_sentence(text, tokenizer, segment, continuations)
    elif boundaries == "wordpiece":

        def encode(text: str) -> Sentence:
            return wordpiece_sentence(text, tokenizer, continuations)
    else:
        raise ValueError(f"word_boundaries must be one of {WORD_BOUNDARIES}, got {boundaries!r}")
    if units:
        from .units import UnitMatcher, tokenizer_lowercases, unit_sentence

        matcher, words = UnitMatcher(units, tokenizer_lowercases(tokenizer)), encode

        def encode(text: str) -> Sentence:
            base = words(text)
            if not base.ids:
                return base
            return unit_sentence(text, base, tokenizer.text_to_ids_with_offsets(text)[1], matcher)
    tokenized = []
    for document in tqdm(documents, desc="tokenizing", unit="doc", disable=not progress):
        sentences = [s for s, text in zip(map(encode, document), document, strict=True) if s.ids and (
            max_tokens_per_char is None or len(s.ids) <= max_tokens_per_char * len(text))]
        if sentences:
            tokenized.append(sentences)
    return tokenized
