"""Documents of text → documents of tokenized :class:`Sentence` s, with the word boundaries whole-word masking needs.

Word boundaries come from WordPiece itself (a ``##`` piece continues the word before it) or, for Chinese, from
jieba: the characters of one jieba word form one word, as Chinese-BERT-wwm does with its segmenter.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

from ..tokenization import BertTokenizer
from .documents import Document
from .instances import Sentence

WORD_BOUNDARIES = ("wordpiece", "jieba")


def continuation_ids(tokenizer: BertTokenizer) -> frozenset[int]:
    """Ids of the ``##`` pieces: tokens that continue a word."""
    return frozenset(i for token, i in tokenizer.get_vocab().items() if token.startswith("##"))


def wordpiece_sentence(text: str, tokenizer: BertTokenizer, continuations: frozenset[int]) -> Sentence:
    """Token ids with word starts read off the ``##`` prefix."""
    ids = tokenizer.text_to_ids(text)
    return Sentence(ids, [i not in continuations for i in ids])


def jieba_sentence(text: str, tokenizer: BertTokenizer, segment: Callable[[str], list[str]]) -> Sentence:
    """Token ids with word starts at jieba's word boundaries: a word's later characters continue it."""
    ids, starts = [], []
    for word in segment(text):
        word_ids = tokenizer.text_to_ids(word)
        ids.extend(word_ids)
        starts.extend([True] + [False] * (len(word_ids) - 1))
    return Sentence(ids, starts)


def tokenize_documents(
    documents: list[Document], tokenizer: BertTokenizer, word_boundaries: str = "wordpiece", progress: bool = True
) -> list[list[Sentence]]:
    """Every sentence tokenized; sentences with no tokens and documents with no sentences are dropped."""
    if word_boundaries == "jieba":
        from ..tokenization.chinese import segment

        def encode(text: str) -> Sentence:
            return jieba_sentence(text, tokenizer, segment)
    elif word_boundaries == "wordpiece":
        continuations = continuation_ids(tokenizer)

        def encode(text: str) -> Sentence:
            return wordpiece_sentence(text, tokenizer, continuations)
    else:
        raise ValueError(f"word_boundaries must be one of {WORD_BOUNDARIES}, got {word_boundaries!r}")
    tokenized = []
    for document in tqdm(documents, desc="tokenizing", unit="doc", disable=not progress):
        sentences = [s for s in map(encode, document) if s.ids]
        if sentences:
            tokenized.append(sentences)
    return tokenized
