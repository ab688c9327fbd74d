"""Chinese words: jieba segmentation, and the word-first tokenizer (WoBERT) that uses it.

BERT's Chinese vocabulary is one token per character. WoBERT adds frequent words to it and tokenizes word-first:
jieba splits the text into words, a word found in the vocabulary is one token, any other word goes through BERT's
usual character-level path. ``segment`` is also what whole-word masking uses to find word boundaries.

jieba is imported on first use only (it loads a 5 MB dictionary), with its cache in ``~/.cache/bertkit/jieba``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .alignment import Span, chunks_with_spans
from .basic import clean_and_split, is_chinese_char
from .tokenizer import BertTokenizer


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

    def _is_vocab_word(self, word: str) -> bool:
        return is_chinese_word(word) and word in self.vocab

    def _fallback(self, word: str) -> list[str]:
        """BERT's path for a word outside the vocabulary: CJK characters split apart, then WordPiece."""
        return [t for chunk in self.basic.chunks(word) for t in super()._tokens_of_chunk(chunk)]

    def _tokens_of_chunk(self, chunk: str) -> list[str]:
        if not self.do_basic_tokenize:
            return super()._tokens_of_chunk(chunk)
        return [t for w in segment(chunk) for t in ([w] if self._is_vocab_word(w) else self._fallback(w))]

    def _token_spans(self, text: str) -> list[tuple[str, Span]]:
        if not self.do_basic_tokenize:
            return super()._token_spans(text)
        out: list[tuple[str, Span]] = []
        for chunk, positions in chunks_with_spans(text, tokenize_chinese_chars=False):
            start = 0
            for word in _jieba().lcut(chunk):  # a chunk holds no whitespace: its words tile it exactly
                end = start + len(word)
                if self._is_vocab_word(word):
                    out.append((word, (positions[start], positions[end - 1] + 1)))
                else:
                    out += [(token, (positions[start + s], positions[start + e - 1] + 1))
                            for token, (s, e) in super()._token_spans(word)]
                start = end
        return out
