"""Training SentencePiece's BPE model (``--model-type sp-bpe``), written as a ``.model`` file SentencePiece loads.

As SentencePiece's BPE trainer: the corpus is normalised and counted by word (``unigram_training.count_words``: the
characters covering ``character_coverage`` of the text, the rest unknown); each word starts as its characters; the
most frequent adjacent pair whose concatenation is a valid piece (one script, ``▁`` only in front, at most 16
characters) is merged everywhere, until the merges and the required characters fill the vocabulary. The n-th merged
piece gets the score -n and the characters follow, most frequent first: at encoding time the score is the merge
order (``sp_bpe.py``). Pair counts are kept up to date word by word, so each merge touches only the words that
hold its pair.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable

from .sentencepiece_model import UNKNOWN, ModelProto, Piece
from .sp_normalizer import Normalizer
from .sp_training_text import META_PIECES, add_byte_pieces, count_words, is_valid_piece, words_of

Pair = tuple[str, str]


def _pairs(symbols: list[str]) -> Counter:
    return Counter(zip(symbols, symbols[1:], strict=False))  # adjacent pairs: one shorter on purpose


def _merge(symbols: list[str], pair: Pair) -> list[str]:
    """The word's symbols with every occurrence of ``pair`` (left to right) merged."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def learn_merges(words: Counter, n_merges: int, max_length: int = 16, split_digits: bool = False) -> list[str]:
    """The merged pieces, most frequent pair first (ties: the smaller piece, for a deterministic order).

    A heap holds (-count, piece, pair) entries; an entry whose count is no longer the pair's is stale and skipped.
    """
    symbols = {word: list(word) for word in words}
    counts: Counter = Counter()
    where: dict[Pair, set[str]] = defaultdict(set)
    for word, freq in words.items():
        for pair, n in _pairs(symbols[word]).items():
            counts[pair] += n * freq
            where[pair].add(word)
    heap = [(-count, a + b, (a, b)) for (a, b), count in counts.items() if is_valid_piece(a + b, max_length,
                                                                                          split_digits)]
    heapq.heapify(heap)
    merges: list[str] = []
    while len(merges) < n_merges and heap:
        negative, piece, best = heapq.heappop(heap)
        if counts.get(best, 0) != -negative or negative == 0:
            continue  # stale: the pair's count changed since this entry
        merges.append(piece)
        touched: set[Pair] = set()
        for word in list(where.pop(best, ())):
            freq = words[word]
            for pair, n in _pairs(symbols[word]).items():
                counts[pair] -= n * freq
                touched.add(pair)
            symbols[word] = _merge(symbols[word], best)
            for pair, n in _pairs(symbols[word]).items():
                counts[pair] += n * freq
                where[pair].add(word)
                touched.add(pair)
        counts.pop(best, None)
        for pair in touched - {best}:
            count = counts.get(pair, 0)
            if count <= 0:
                counts.pop(pair, None)
            elif is_valid_piece(pair[0] + pair[1], max_length, split_digits):
                heapq.heappush(heap, (-count, pair[0] + pair[1], pair))
    return merges


def train_sp_bpe(lines: Iterable[str], vocab_size: int, *, character_coverage: float = 0.9995,
                 max_piece_length: int = 16, split_digits: bool = False, normalizer_spec: dict | None = None,
                 meta_pieces: tuple[tuple[str, int], ...] = META_PIECES, byte_fallback: bool = False) -> ModelProto:
    """Train a SentencePiece BPE model on ``lines`` (identity normalisation unless ``normalizer_spec``;
    ``byte_fallback`` spends 256 of the ``vocab_size`` on byte pieces)."""
    if byte_fallback:
        model = train_sp_bpe(lines, vocab_size - 256, character_coverage=character_coverage,
                             max_piece_length=max_piece_length, split_digits=split_digits,
                             normalizer_spec=normalizer_spec, meta_pieces=meta_pieces)
        return add_byte_pieces(model, len(meta_pieces))
    spec = dict(normalizer_spec or {"name": "identity", "precompiled_charsmap": b"", "add_dummy_prefix": True,
                                    "remove_extra_whitespaces": True, "escape_whitespaces": True})
    contexts, required = count_words(lines, Normalizer(spec), character_coverage)
    words = words_of(contexts)
    n_merges = vocab_size - len(meta_pieces) - len(required)
    if n_merges < 0:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(required)} characters needed to cover "
                         f"{character_coverage:.2%} of the text; raise vocab_size or lower character_coverage")
    merges = learn_merges(words, n_merges, max_piece_length, split_digits)
    chars = [c for c, _ in sorted(required.items(), key=lambda kv: (-kv[1], kv[0]))]
    ordered = list(dict.fromkeys(merges + chars))
    pieces = [Piece(p, 0.0, t) for p, t in meta_pieces] + [Piece(p, -float(i)) for i, p in enumerate(ordered)]
    ids = {p: i for i, (p, _) in enumerate(meta_pieces)}
    unk = next(p for p, t in meta_pieces if t == UNKNOWN)
    model = ModelProto(pieces=pieces)
    model.trainer_spec = {"model_type": 2, "vocab_size": len(pieces), "character_coverage": character_coverage,
                          "split_digits": split_digits, "max_sentencepiece_length": max_piece_length,
                          "unk_id": ids[unk], "unk_piece": unk, "bos_id": ids.get("<s>", -1),
                          "eos_id": ids.get("</s>", -1), "pad_id": ids.get("<pad>", -1)}
    model.normalizer_spec = spec
    return model
