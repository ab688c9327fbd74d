"""Texts → model inputs the way bert-as-service builds them: pairs, right truncation, masks, dynamic length.

A text ``"A ||| B"`` is a pair (the split is at the last ``" ||| "``, as the original's regex finds it); a
pre-tokenised text is a list of tokens, split at its first ``"|||"`` element, whose tokens outside the vocabulary
become ``[UNK]``. Pairs are truncated longest-first to ``max_seq_len - 3``, single texts to ``max_seq_len - 2``.
With ``mask_cls_sep`` the mask is 0 on ``[CLS]``/``[SEP]``: the original feeds that mask to the model too, so those
tokens are neither attended to nor pooled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..tokenization import BertTokenizer
from ..tokenization.batch import truncation_lengths

PAIR_PATTERN = re.compile(r"^(.*) \|\|\| (.*)$")
PAIR_TOKEN = "|||"

Item = str | list[str]  # one entry of a request: a text, or a pre-tokenised text


@dataclass
class Features:
    """One sequence ready for the model (unpadded)."""

    tokens: list[str]
    input_ids: list[int]
    segment_ids: list[int]
    mask: list[int]


def text_and_pair(item: Item) -> tuple[str, str | None]:
    """An entry as (text, pair or None), by the same rule as ``split_item``: the last ``" ||| "`` of a text, the
    first ``"|||"`` element of a token list (whose tokens are joined by spaces)."""
    if isinstance(item, list):
        if PAIR_TOKEN in item:
            cut = item.index(PAIR_TOKEN)
            return " ".join(item[:cut]), " ".join(item[cut + 1 :])
        return " ".join(item), None
    match = PAIR_PATTERN.match(item.strip())
    return (item.strip(), None) if match is None else (match.group(1), match.group(2))


def split_item(tokenizer: BertTokenizer, item: Item) -> tuple[list[str], list[str]]:
    """Tokens of the first and (possibly empty) second text of an item."""
    if isinstance(item, str):
        match = PAIR_PATTERN.match(item.strip())
        if match is None:
            return tokenizer.tokenize(item.strip()), []
        return tokenizer.tokenize(match.group(1)), tokenizer.tokenize(match.group(2))
    vocab = tokenizer.vocab
    known = [t if t in vocab else tokenizer.unk_token for t in item]
    if PAIR_TOKEN in item:
        cut = item.index(PAIR_TOKEN)
        return known[:cut], known[cut + 1 :]
    return known, []


def sequence_length(pairs: list[tuple[list[str], list[str]]], max_seq_len: int | None, positions: int) -> int:
    """``max_seq_len``, or for ``None`` the longest sequence of the batch (capped at the model's positions)."""
    if max_seq_len is not None:
        return max_seq_len
    longest = max((len(a) + len(b) for a, b in pairs), default=0)
    return min(longest + (3 if any(b for _, b in pairs) else 2), positions)


def build_features(
    tokenizer: BertTokenizer, items: list[Item], max_seq_len: int | None, positions: int, mask_cls_sep: bool = False
) -> tuple[list[Features], int]:
    """Features of every item and the sequence length the batch is padded to."""
    pairs = [split_item(tokenizer, item) for item in items]
    length = sequence_length(pairs, max_seq_len, positions)
    special = int(not mask_cls_sep)
    out = []
    for tokens_a, tokens_b in pairs:
        keep_a, keep_b = truncation_lengths(len(tokens_a), len(tokens_b) if tokens_b else None,
                                            length - (3 if tokens_b else 2), "longest_first")
        tokens = [tokenizer.cls_token, *tokens_a[:keep_a], tokenizer.sep_token]
        segment_ids = [0] * len(tokens)
        mask = [special] + [1] * keep_a + [special]
        if tokens_b:
            tokens += [*tokens_b[:keep_b], tokenizer.sep_token]
            segment_ids += [1] * (keep_b + 1)
            mask += [1] * keep_b + [special]
        out.append(Features(tokens, tokenizer.convert_tokens_to_ids(tokens), segment_ids, mask))
    return out, length
