"""Chinese words: jieba segmentation, and the word-first tokenizer (WoBERT) that uses it.

BERT's Chinese vocabulary is one token per character. WoBERT adds frequent words to it and tokenizes word-first:
jieba splits the text into words, a word found in the vocabulary is one token, any other word goes through BERT's
usual character-level path. ``segment`` is also what whole-word masking uses to find word boundaries.

jieba is imported on first use only (it loads a 5 MB dictionary), with its cache in ``~/.cache/bertkit/jieba``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from .alignment import Span, chunks_with_spans
from .basic import _CJK_RANGES, clean_and_split, is_chinese_char
from .tokenizer import BertTokenizer

# Runs of CJK ideographs: what jieba segments; everything between them takes BERT's usual path unchanged.
_CJK_RUN = re.compile("([" + "".join(f"{chr(low)}-{chr(high)}" for low, high in _CJK_RANGES) + "]+)")


@cache
def _jieba() -> Any:
    """The jieba module, its cache folder set to bertkit's so it never writes elsewhere."""
    try:
        import jieba
    except ImportError:
        raise ValueError("Chinese word segmentation needs jieba: pip install 'bertkit[chinese]' (jieba==0.42.1)") \
            from None
    folder = Path(os.environ.get("BERTKIT_CACHE") or Path.home() / ".cache" / "bertkit") / "jieba"
    folder.mkdir(parents=True, exist_ok=True)
    jieba.dt.tmp_dir = str(folder)
    jieba.setLogLevel(logging.WARNING)
    return jieba


def segment(text: str) -> list[str]:
    """jieba's words of ``text`` (whitespace dropped): "自然语言处理很有趣" → ["自然语言", "处理", "很", "有趣"]."""
    return [word for word in _jieba().lcut(text) if not word.isspace()]


def is_chinese_word(word: str) -> bool:
    """Two or more characters, all CJK ideographs: the words worth a vocabulary entry of their own."""
    return len(word) > 1 and all(is_chinese_char(c) for c in word)


def count_chinese_words(lines: Iterable[str], progress: bool = True) -> Counter[str]:
    """How often each multi-character Chinese word occurs, by jieba's segmentation."""
    from tqdm.auto import tqdm  # here: bertkit.tokenization imports this module, and tqdm costs 60 ms to import

    counts: Counter[str] = Counter()
    for line in tqdm(lines, desc="jieba words", unit=" lines", disable=not progress, mininterval=1):
        counts.update(word for word in segment(line) if is_chinese_word(word))
    return counts


class JiebaBertTokenizer(BertTokenizer):
    """``BertTokenizer``, word-first: jieba words in the vocabulary stay whole, the rest is tokenized as usual.

    Chosen by ``"pre_tokenizer": "jieba"`` in tokenizer_config.json. Only the chunking changes: CJK characters are
    not split apart before jieba sees them; everything after that is the parent's (caching, ids, pairs, padding).
    """

    pre_tokenizer = "jieba"

    def _chunks(self, text: str) -> list[str]:
        return clean_and_split(text, tokenize_chinese_chars=False) if self.do_basic_tokenize else text.split()

    def _pieces_of_chunk(self, chunk: str) -> list[tuple[str, int, bool]]:
        """(text, start in chunk, is a vocabulary word): runs of other characters go whole to BERT's path, CJK
        runs are segmented by jieba, and a word outside the vocabulary falls apart into characters, as in BERT."""
        out: list[tuple[str, int, bool]] = []
        start = 0
        for i, run in enumerate(_CJK_RUN.split(chunk)):
            words = _jieba().lcut(run) if i % 2 else [run] * bool(run)
            for word in words:
                if not i % 2 or self._is_vocab_word(word):
                    out.append((word, start, bool(i % 2)))
                else:
                    out += [(char, start + k, False) for k, char in enumerate(word)]
                start += len(word)
        return out

    def _is_vocab_word(self, word: str) -> bool:
        return is_chinese_word(word) and word in self.vocab

    def _tokens_of_chunk(self, chunk: str) -> list[str]:
        parent = super()._tokens_of_chunk  # bound here: a comprehension has no super()
        if not self.do_basic_tokenize:
            return parent(chunk)
        return [t for text, _, whole in self._pieces_of_chunk(chunk) for t in ([text] if whole else parent(text))]

    def _token_spans(self, text: str) -> list[tuple[str, Span]]:
        parent = super()._token_spans
        if not self.do_basic_tokenize:
            return parent(text)
        out: list[tuple[str, Span]] = []
        for chunk, positions in chunks_with_spans(text, tokenize_chinese_chars=False):
            for piece, start, whole in self._pieces_of_chunk(chunk):
                if whole:
                    out.append((piece, (positions[start], positions[start + len(piece) - 1] + 1)))
                else:
                    out += [(token, (positions[start + s], positions[start + e - 1] + 1))
                            for token, (s, e) in parent(piece)]
        return out
