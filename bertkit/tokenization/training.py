"""Training a vocabulary: text files → ``vocab.txt`` + ``tokenizer_config.json`` that ``BertTokenizer`` loads.

1. Pre-tokenize with BERT's own BasicTokenizer (same lower-casing / accent stripping as the tokenizer that will read
   the vocabulary) and count distinct words; chunks are counted first, so each distinct chunk is split once.
2. The alphabet: the ``limit_alphabet`` most frequent characters. Words with other characters, or longer than
   WordPiece's 100-character limit, would be ``[UNK]`` whatever the vocabulary, so they are left out of training.
3. The vocabulary: the five special tokens, the alphabet (each character bare and, where it occurs inside a word,
   as a ``##`` continuation), then merged subwords (``merges.learn_merges``) up to ``vocab_size``.

With ``pre_tokenize="jieba"`` frequent Chinese words (jieba's segmentation) join the vocabulary too, and the saved
config selects the word-first tokenizer (``chinese.JiebaBertTokenizer``); see ``chinese.py``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from ..textio import iter_lines
from .basic import BasicTokenizer
from .merges import MODEL_TYPES, learn_merges
from .tokenizer import BertTokenizer
from .vocab import load_vocab
from .wordpiece import CONTINUATION

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_WORD_CHARS = 100  # WordPiece's max_input_chars_per_word: longer words are [UNK] anyway
PRE_TOKENIZERS = (None, "jieba")
# The WordPiece score favours pairs of rare symbols, so with a low threshold the vocabulary fills with rare words:
# on 11 MB of English at 20k tokens, min_frequency=2 gave 1.78× the tokens per word of BPE, min_frequency=10 1.04×
# (bench/train_tokenizer.py). BPE merges frequent pairs first and needs no such guard.
DEFAULT_MIN_FREQUENCY = {"wordpiece": 10, "bpe": 2}


def read_lines(files: Iterable[str | os.PathLike]) -> Iterator[str]:
    """Lines of UTF-8 text files, in order; a missing file is an error before anything is read."""
    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("no training files given")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"training file not found: {path}")
    for path in paths:  # strictly UTF-8: a byte of another encoding is an error naming the file and offset
        yield from iter_lines(path)


def count_words(lines: Iterable[str], basic: BasicTokenizer, progress: bool = True) -> Counter[str]:
    """Word counts after BERT's basic tokenization (whitespace chunks counted first, each split once)."""
    chunks: Counter[str] = Counter()
    for line in tqdm(lines, desc="counting words", unit=" lines", disable=not progress, mininterval=1):
        chunks.update(basic.chunks(line))
    words: Counter[str] = Counter()
    for chunk, count in chunks.items():
        for word in basic.split_chunk(chunk):
            words[word] += count
    return words


def select_alphabet(word_counts: dict[str, int], limit_alphabet: int | None) -> list[str]:
    """The ``limit_alphabet`` most frequent characters (all of them when None), sorted."""
    chars: Counter[str] = Counter()
    for word, count in word_counts.items():
        for char in word:
            chars[char] += count
    ranked = sorted(chars, key=lambda c: (-chars[c], c))
    if limit_alphabet is not None:
        if limit_alphabet < 1:
            raise ValueError(f"limit_alphabet must be at least 1, got {limit_alphabet}")
        ranked = ranked[:limit_alphabet]
    return sorted(ranked)


def initial_symbols(word_counts: dict[str, int], alphabet: list[str]) -> list[str]:
    """Each alphabet character, then ``##c`` for every character that occurs inside a word."""
    inner = {char for word in word_counts for char in word[1:]}
    return list(alphabet) + [CONTINUATION + c for c in alphabet if c in inner]


def trainable_words(word_counts: dict[str, int], alphabet: list[str]) -> dict[str, int]:
    """Words spelled in the alphabet and short enough for WordPiece: the ones a vocabulary can cover."""
    allowed = set(alphabet)
    return {w: n for w, n in word_counts.items() if len(w) <= MAX_WORD_CHARS and set(w) <= allowed}


def build_vocab(
    word_counts: dict[str, int],
    vocab_size: int,
    model_type: str = "wordpiece",
    min_frequency: int = 2,
    limit_alphabet: int | None = 1000,
    extra_words: dict[str, int] | None = None,
    progress: bool = True,
) -> list[str]:
    """The vocabulary as a token list (id = index): specials, alphabet, then learned tokens up to ``vocab_size``.

    ``extra_words`` (whole words with counts, e.g. Chinese words) compete with the merges for the places left:
    whichever of the next merge and the next word is more frequent goes in first.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if not word_counts:
        raise ValueError("the training corpus holds no words (empty files?)")
    alphabet = select_alphabet(word_counts, limit_alphabet)
    tokens = list(SPECIAL_TOKENS) + initial_symbols(word_counts, alphabet)
    if vocab_size < len(tokens):
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {len(SPECIAL_TOKENS)} special tokens + "
                         f"{len(tokens) - len(SPECIAL_TOKENS)} alphabet symbols ({len(alphabet)} characters and "
                         f"their ## continuations) = {len(tokens)}; raise vocab_size or lower limit_alphabet")
    room = vocab_size - len(tokens)
    merges = learn_merges(trainable_words(word_counts, alphabet), room, model_type, min_frequency, tokens, progress)
    words = ranked_new_words(extra_words or {}, set(tokens), min_frequency)
    return tokens + interleave_by_count(merges, words, room)


def ranked_new_words(word_counts: dict[str, int], known: set[str], min_frequency: int) -> list[tuple[str, int]]:
    """Words not yet in the vocabulary, seen at least ``min_frequency`` times, most frequent first."""
    kept = [(w, n) for w, n in word_counts.items() if n >= min_frequency and w not in known]
    return sorted(kept, key=lambda item: (-item[1], item[0]))


def interleave_by_count(first: list[tuple[str, int]], second: list[tuple[str, int]], room: int) -> list[str]:
    """Up to ``room`` tokens taken from the fronts of two (token, count) lists, the higher count first."""
    out: list[str] = []
    seen: set[str] = set()
    i = j = 0
    while len(out) < room and (i < len(first) or j < len(second)):
        if j >= len(second) or (i < len(first) and first[i][1] >= second[j][1]):
            token, i = first[i][0], i + 1
        else:
            token, j = second[j][0], j + 1
        if token not in seen:
            seen.add(token)
            out.append(token)
    return out


def train_tokenizer(
    files: Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    vocab_size: int = 30000,
    model_type: str = "wordpiece",
    min_frequency: int | None = None,
    limit_alphabet: int | None = 1000,
    lower_case: bool = True,
    strip_accents: bool | None = None,
    pre_tokenize: str | None = None,
    base_vocab: str | os.PathLike | None = None,
    progress: bool = True,
) -> BertTokenizer:
    """Learn a vocabulary from text files and save ``vocab.txt`` + ``tokenizer_config.json`` in ``output_dir``.

    ``min_frequency``: a merge or an added word must occur this often (default: ``DEFAULT_MIN_FREQUENCY``).
    ``base_vocab`` (jieba only): keep an existing ``vocab.txt`` with its ids and append frequent words to it, so a
    model trained on the old vocabulary can be grown to the new one (``bertkit.word_model``).
    """
    if pre_tokenize not in PRE_TOKENIZERS:
        raise ValueError(f"pre_tokenize must be one of {PRE_TOKENIZERS[1:]} or None, got {pre_tokenize!r}")
    if base_vocab is not None and pre_tokenize != "jieba":
        raise ValueError("base_vocab only applies with pre_tokenize='jieba' (it adds words to an existing vocabulary)")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if min_frequency is None:
        min_frequency = DEFAULT_MIN_FREQUENCY[model_type]
    basic = BasicTokenizer(do_lower_case=lower_case, strip_accents=strip_accents)
    lines = read_lines(files)
    if pre_tokenize == "jieba":
        from .chinese import JiebaBertTokenizer, count_chinese_words

        lines = list(lines)
        extra = count_chinese_words(lines, progress)
        tokenizer_class: type[BertTokenizer] = JiebaBertTokenizer
    else:
        extra, tokenizer_class = None, BertTokenizer
    if base_vocab is not None:
        base = load_vocab(base_vocab)
        tokens = sorted(base, key=base.__getitem__)
        if [base[t] for t in tokens] != list(range(len(tokens))):
            raise ValueError(f"{base_vocab}: token ids are not consecutive (a repeated token?); cannot extend it")
        if vocab_size < len(tokens):
            raise ValueError(f"vocab_size={vocab_size} is smaller than the base vocabulary ({len(tokens)} tokens)")
        new_words = ranked_new_words(extra, set(tokens), min_frequency)
        tokens += [w for w, _ in new_words[: vocab_size - len(tokens)]]
    else:
        word_counts = count_words(lines, basic, progress)
        tokens = build_vocab(word_counts, vocab_size, model_type, min_frequency, limit_alphabet, extra, progress)
    tokenizer = tokenizer_class(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=lower_case,
                                strip_accents=strip_accents)
    tokenizer.save_pretrained(output_dir)
    return tokenizer
