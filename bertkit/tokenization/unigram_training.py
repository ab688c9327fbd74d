"""Training a Unigram vocabulary as SentencePiece's trainer does, in pure Python, written as a ``.model`` file.

1. ``count_words`` (``sp_training_text.py``, shared with the BPE trainer) — normalise each line (``▁`` for spaces,
   a dummy prefix), keep the characters that cover ``character_coverage`` of the text (the rest become U+2585,
   unknown), and count the words (a word starts at each ``▁``: pieces never cross one).
2. ``seed_pieces`` — every character, and the substrings (2 to 16 characters, seen at least twice, one script, ``▁``
   only in front) with the highest frequency × length; their frequencies become log-probabilities.
3. EM, ``num_sub_iterations`` times per round — E: expected count of each piece over every segmentation of every
   word (forward-backward on the lattice); M: drop pieces expected less than 0.5 times, score the rest by the
   Bayesian update digamma(count) - digamma(total).
4. ``prune`` — for each piece, the loss in likelihood if its uses went to its second-best segmentation; keep the
   pieces that would cost most, ``shrinking_factor`` of them, until 1.1 × the vocabulary size is left.
5. ``prune_unreachable`` drops pieces their own decomposition outscores; ``finalize`` keeps the required
   characters, then the best pieces up to ``vocab_size`` less the special pieces.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from .sentencepiece_model import CONTROL, NORMAL, UNKNOWN, ModelProto, Piece
from .sp_bpe_training import train_sp_bpe
from .sp_normalizer import Normalizer
from .sp_training_text import META_PIECES, UNK_CHAR, add_byte_pieces, count_words, is_valid_piece, words_of
from .unigram import UnigramModel


def digamma(x: float) -> float:
    """The digamma function (asymptotic series after shifting x above 7), as SentencePiece's trainer computes it."""
    result = 0.0
    while x < 7:
        result -= 1 / x
        x += 1
    x -= 0.5
    xx = 1.0 / x
    xx2 = xx * xx
    xx4 = xx2 * xx2
    return result + math.log(x) + xx2 / 24 - 7 * xx4 / 960 + 31 * xx4 * xx2 / 8064 - 127 * xx4 * xx4 / 30720


def seed_pieces(contexts: Counter, seed_size: int, max_length: int, split_digits: bool) -> dict[str, float]:
    """Characters and frequent substrings with log-probability scores (frequency × length, normalised).

    As SentencePiece's suffix-array seeds, a substring is a candidate only where it is a right-maximal repeat:
    followed by at least two different characters (a word always followed by the same one is seeded only as part
    of the longer string, which crosses a ``▁`` and so is no piece).
    """
    substrings: Counter = Counter()
    chars: Counter = Counter()
    follows: dict[str, str] = {}
    branching: set[str] = set()
    for (word, after), freq in contexts.items():
        for i, char in enumerate(word):
            if char != UNK_CHAR:
                chars[char] += freq
            for j in range(i + 2, min(len(word), i + max_length) + 1):
                piece = word[i:j]
                substrings[piece] += freq
                right = word[j] if j < len(word) else after
                seen = follows.setdefault(piece, right)
                if seen != right:
                    branching.add(piece)
    candidates = [(freq * len(s), s) for s, freq in substrings.items()
                  if freq >= 2 and s in branching and is_valid_piece(s, max_length, split_digits)]
    candidates.sort(key=lambda t: (-t[0], -len(t[1]), t[1]))
    scores = dict(chars)
    for score, piece in candidates[:seed_size]:
        scores[piece] = score
    log_total = math.log(sum(scores.values()))
    return {piece: math.log(score) - log_total for piece, score in scores.items()}


def _model(pieces: dict[str, float]) -> tuple[UnigramModel, list[str]]:
    """A Unigram model over the current pieces (unknown characters get id -1)."""
    names = list(pieces)
    return UnigramModel(names, [pieces[p] for p in names], [NORMAL] * len(names), unk_id=-1), names


def e_step(pieces: dict[str, float], words: Counter) -> list[float]:
    """Expected count of each piece (in ``pieces`` order) over all segmentations of all words."""
    model, names = _model(pieces)
    expected = [0.0] * len(names)
    for word, freq in words.items():
        ends = model.lattice(word)
        alpha = model.forward(ends, 1.0)
        beta = [0.0] * (len(word) + 1)  # log-sum of paths from each position to the end
        starts: list[list] = [[] for _ in range(len(word) + 1)]
        for nodes in ends:
            for node in nodes:
                starts[node.start].append(node)
        for pos in range(len(word) - 1, -1, -1):
            terms = [node.score + beta[node.end] for node in starts[pos]]
            top = max(terms)
            beta[pos] = top + math.log(sum(math.exp(t - top) for t in terms))
        z = alpha[-1]
        for nodes in ends:
            for node in nodes:
                if node.id >= 0:
                    expected[node.id] += freq * math.exp(alpha[node.start] + node.score + beta[node.end] - z)
    return expected


def m_step(pieces: dict[str, float], expected: list[float]) -> dict[str, float]:
    """Drop pieces expected under 0.5 times; score the rest digamma(count) - digamma(total)."""
    kept = {p: e for p, e in zip(pieces, expected, strict=True) if e >= 0.5}
    log_total = digamma(sum(kept.values()))
    return {p: digamma(e) - log_total for p, e in kept.items()}


def prune(pieces: dict[str, float], words: Counter, target: int, shrinking_factor: float) -> dict[str, float]:
    """Keep the pieces whose removal would lose most likelihood (SentencePiece's ``PruneSentencePieces``)."""
    model, names = _model(pieces)
    always_keep = [True] * len(names)
    alternatives: list[list[int]] = [[] for _ in names]
    for i, piece in enumerate(names):
        best = model.nbest(piece, 2)
        if len(best) < 2:
            continue
        if len(best[0][0]) >= 2:
            always_keep[i] = False  # its own word prefers a split: safe to drop
        elif len(best[0][0]) == 1:
            alternatives[i] = [node.id for node in best[1][0]]
    freq = [0.0] * len(names)
    for word, count in words.items():
        for _, _, i in model.viterbi(word):
            if i >= 0:
                freq[i] += count
    total = sum(freq)
    log_total = math.log(total)
    kept, candidates = {}, []
    for i, piece in enumerate(names):
        if freq[i] == 0 or not always_keep[i]:
            continue
        if not alternatives[i]:
            kept[piece] = pieces[piece]
            continue
        log_p = math.log(freq[i]) - log_total
        log_total_alt = math.log(total + freq[i] * (len(alternatives[i]) - 1))
        log_p_alt = sum(math.log(freq[n] + freq[i]) - log_total_alt for n in alternatives[i])
        candidates.append((freq[i] / total * (log_p - log_p_alt), piece))
    size = max(target, int(shrinking_factor * len(names)))
    for _, piece in sorted(candidates, key=lambda t: (-t[0], t[1])):
        if len(kept) >= size:
            break
        kept[piece] = pieces[piece]
    return kept


def prune_unreachable(pieces: dict[str, float]) -> dict[str, float]:
    """Drop pieces that lose to their own decomposition, so Viterbi could never pick them."""
    model, names = _model(pieces)
    kept = {}
    for i, piece in enumerate(names):
        ends = model.lattice(piece)
        ends[-1] = [node for node in ends[-1] if not (node.start == 0 and node.id == i)]
        alternative = model._best_prefix(ends)[-1]
        if not alternative > pieces[piece]:
            kept[piece] = pieces[piece]
    return kept


def finalize(pieces: dict[str, float], required: dict[str, int], vocab_size: int,
             n_meta: int = len(META_PIECES)) -> list[tuple[str, float]]:
    """Required characters first (a missing one just under the lowest score), then the best pieces."""
    final: dict[str, float] = {}
    low, penalty = min(pieces.values()), 0.0
    for char, _ in sorted(required.items(), key=lambda kv: (-kv[1], kv[0])):
        if char in pieces:
            final[char] = pieces[char]
        else:
            final[char] = low + penalty
            penalty += 0.0001
    room = vocab_size - n_meta
    for piece, score in sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(final) >= room:
            break
        final.setdefault(piece, score)
    return sorted(final.items(), key=lambda kv: (-kv[1], kv[0]))


def train_unigram(lines: Iterable[str], vocab_size: int, *, character_coverage: float = 0.9995,
                  seed_size: int = 1_000_000, max_piece_length: int = 16, num_sub_iterations: int = 2,
                  shrinking_factor: float = 0.75, split_digits: bool = False,
                  normalizer_spec: dict | None = None,
                  meta_pieces: tuple[tuple[str, int], ...] = META_PIECES, byte_fallback: bool = False) -> ModelProto:
    """Train a Unigram SentencePiece model on ``lines``; ``normalizer_spec`` defaults to identity (no charsmap).

    ``meta_pieces`` come first, in order, as (piece, type): SentencePiece's default ``<unk> <s> </s>``, or a
    family's (ALBERT: ``<pad> <unk> [CLS] [SEP] [MASK]``); exactly one must be of type UNKNOWN. ``byte_fallback``
    spends 256 of the ``vocab_size`` on byte pieces.

    ``seed_size`` is SentencePiece's default, a million: the right-maximal repeats of a corpus that pure Python
    trains on are fewer.
    """
    spec = dict(normalizer_spec or {"name": "identity", "precompiled_charsmap": b"", "add_dummy_prefix": True,
                                    "remove_extra_whitespaces": True, "escape_whitespaces": True,
                                    "normalization_rule_tsv": ""})
    if byte_fallback:
        model = train_unigram(lines, vocab_size - 256, character_coverage=character_coverage, seed_size=seed_size,
                              max_piece_length=max_piece_length, num_sub_iterations=num_sub_iterations,
                              shrinking_factor=shrinking_factor, split_digits=split_digits,
                              normalizer_spec=normalizer_spec, meta_pieces=meta_pieces)
        return add_byte_pieces(model, len(meta_pieces))
    contexts, required = count_words(lines, Normalizer(spec), character_coverage)
    words = words_of(contexts)
    if len(required) + len(meta_pieces) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(required)} characters needed to cover "
                         f"{character_coverage:.2%} of the text; raise vocab_size or lower character_coverage")
    pieces = seed_pieces(contexts, seed_size, max_piece_length, split_digits)
    target = int(vocab_size * 1.1)
    while True:
        for _ in range(num_sub_iterations):
            pieces = m_step(pieces, e_step(pieces, words))
        pieces = prune(pieces, words, target, shrinking_factor)
        if len(pieces) <= target:
            break
    pieces = prune_unreachable(pieces)
    if [t for _, t in meta_pieces].count(UNKNOWN) != 1:
        raise ValueError(f"meta_pieces {meta_pieces} must hold exactly one piece of type UNKNOWN")
    final = finalize(pieces, required, vocab_size, len(meta_pieces))
    final = [(p, s) for p, s in final if p not in {m for m, _ in meta_pieces}]
    model = ModelProto(pieces=[Piece(p, 0.0, t) for p, t in meta_pieces] + [Piece(p, s) for p, s in final])
    ids = {p: i for i, (p, _) in enumerate(meta_pieces)}
    unk = next(p for p, t in meta_pieces if t == UNKNOWN)
    model.trainer_spec = {"model_type": 1, "vocab_size": len(model.pieces), "character_coverage": character_coverage,
                          "split_digits": split_digits, "max_sentencepiece_length": max_piece_length,
                          "shrinking_factor": shrinking_factor, "num_sub_iterations": num_sub_iterations,
                          "unk_id": ids[unk], "unk_piece": unk, "bos_id": ids.get("<s>", -1),
                          "eos_id": ids.get("</s>", -1), "pad_id": ids.get("<pad>", -1),
                          "control_symbols": [p for p, t in meta_pieces if t == CONTROL
                                              and p not in ("<s>", "</s>", "<pad>")]}
    model.normalizer_spec = spec
    return model


# The special pieces each family's model starts with, at the ids its checkpoints use.
FAMILY_PIECES = {
    "albert": (("<pad>", CONTROL), ("<unk>", UNKNOWN), ("[CLS]", CONTROL), ("[SEP]", CONTROL), ("[MASK]", CONTROL)),
    "xlnet": (("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL), ("<cls>", CONTROL), ("<sep>", CONTROL),
              ("<pad>", CONTROL), ("<mask>", CONTROL), ("<eod>", CONTROL), ("<eop>", CONTROL)),
    "t5": (("<pad>", CONTROL), ("</s>", CONTROL), ("<unk>", UNKNOWN)),
    "xlm-roberta": META_PIECES,
    "deberta-v2": (("[PAD]", CONTROL), ("[CLS]", CONTROL), ("[SEP]", CONTROL), ("[UNK]", UNKNOWN)),  # v3's layout
}
FAMILY_CLASSES = {"albert": "AlbertTokenizer", "xlnet": "XLNetTokenizer", "t5": "T5Tokenizer",
                  "xlm-roberta": "XLMRobertaTokenizer", "deberta-v2": "DebertaV2Tokenizer"}


def read_lines(files: Iterable[str]) -> list[str]:
    """The non-empty lines of UTF-8 text files."""
    from pathlib import Path

    return [line for f in files for line in Path(f).read_text(encoding="utf-8").splitlines() if line.strip()]


def train_unigram_folder(files: Iterable[str], output, vocab_size: int, family: str = "albert",
                         character_coverage: float = 0.9995, split_digits: bool = False, model_type: str = "unigram",
                         normalizer_from=None, byte_fallback: bool = False, normalization: str | None = None):
    """Train on text files and write a family's folder: its ``.model`` file and ``tokenizer_config.json``.

    ``model_type`` "bpe" trains SentencePiece's BPE instead (``sp_bpe_training.py``). ``normalizer_from``: a
    SentencePiece ``.model`` whose normaliser (``nmt_nfkc``'s charsmap, ...) the new model takes; ``normalization``:
    a normaliser bertkit builds itself (identity, nfkc or nmt_nfkc, ``charsmap_builder.py``); by default identity."""
    from pathlib import Path

    from .sentencepiece_model import serialize_model
    from .sp_families import FAMILIES, prepare_like_albert

    lines = read_lines(files)
    if family in ("albert", "xlnet"):  # train on the text as the family's tokenizer hands it to SentencePiece
        lines = [prepare_like_albert(line, family == "albert", True)[0] for line in lines]
    spec = None
    if normalizer_from is not None and normalization is not None:
        raise ValueError("give normalizer_from (another model's normaliser) or normalization (one bertkit builds), "
                         "not both")
    if normalization is not None:
        from .charsmap_builder import normalizer_spec

        spec = normalizer_spec(normalization)
    if normalizer_from is not None:
        from .sentencepiece_model import load_model

        spec = load_model(normalizer_from).normalizer_spec
    if model_type == "bpe":
        model = train_sp_bpe(lines, vocab_size, character_coverage=character_coverage, split_digits=split_digits,
                             meta_pieces=FAMILY_PIECES[family], normalizer_spec=spec, byte_fallback=byte_fallback)
    else:
        model = train_unigram(lines, vocab_size, character_coverage=character_coverage, split_digits=split_digits,
                              meta_pieces=FAMILY_PIECES[family], normalizer_spec=spec, byte_fallback=byte_fallback)
    cls = FAMILIES[FAMILY_CLASSES[family]]
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / cls.vocab_file_name
    path.write_bytes(serialize_model(model))
    tokenizer = cls(path)
    tokenizer.save_pretrained(output)
    return tokenizer
