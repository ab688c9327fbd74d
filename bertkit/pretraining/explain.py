"""``bertkit explain masking``: one training instance drawn as a table — the picture of masked-LM for a learner."""

from __future__ import annotations

import random

from ..tokenization import BertTokenizer
from .dataset import maskable
from .documents import split_sentences
from .instances import Sentence, SpecialIds, truncate_pair
from .masking import MaskingConfig, mask_instance
from .tokenized import continuation_ids, wordpiece_sentence


def explain_masking(text: str, tokenizer: BertTokenizer, masking: MaskingConfig, seed: int = 0,
                    max_seq_length: int = 128, units: list[str] | None = None) -> str:
    """Tokens, segment ids, and what masking did at each position of ``[CLS] A [SEP] B [SEP]`` built from ``text``.

    The text's sentences are split in half into segments A and B (one sentence: A alone). ``units``: the phrases /
    entities masking ``phrase`` / ``entity`` keeps whole (required by those strategies).
    """
    sentences = split_sentences(text)
    if not sentences:
        raise ValueError("nothing to explain: the text is empty")
    if masking.strategy in ("phrase", "entity") and not units:
        raise ValueError(f"masking {masking.strategy} masks the units of a list: give --units-file (one per line)")
    continuations = continuation_ids(tokenizer)
    encoded = [wordpiece_sentence(s, tokenizer, continuations) for s in sentences]
    if units:
        from .units import UnitMatcher, tokenizer_lowercases, unit_sentence

        matcher = UnitMatcher(units, tokenizer_lowercases(tokenizer))
        encoded = [unit_sentence(s, e, tokenizer.text_to_ids_with_offsets(s)[1], matcher) if e.ids else e
                   for s, e in zip(sentences, encoded, strict=True)]
    half = max(1, len(encoded) // 2)
    a = Sentence([i for s in encoded[:half] for i in s.ids], [w for s in encoded[:half] for w in s.word_starts])
    b = Sentence([i for s in encoded[half:] for i in s.ids], [w for s in encoded[half:] for w in s.word_starts])
    rng = random.Random(seed)
    truncate_pair(a, b, max_seq_length - 3, rng)
    ids = tokenizer.convert_tokens_to_ids
    special = SpecialIds(ids(tokenizer.cls_token), ids(tokenizer.sep_token), ids(tokenizer.pad_token),
                         ids(tokenizer.mask_token))
    cls, sep, mask = special.cls, special.sep, special.mask
    input_ids = [cls, *a.ids, sep] + ([*b.ids, sep] if b.ids else [])
    segments = [0] * (len(a.ids) + 2) + ([1] * (len(b.ids) + 1) if b.ids else [])
    starts = [True, *a.word_starts, True] + ([*b.word_starts, True] if b.ids else [])
    masked = mask_instance(input_ids, starts, maskable(input_ids, special),
                           mask, len(tokenizer), masking, rng)
    rows = [("pos", "token", "segment", "input", "predict", "what happened")]
    for position, (original, shown) in enumerate(zip(input_ids, masked.input_ids, strict=True)):
        token = tokenizer.convert_ids_to_tokens(original)
        if position not in masked.masked_positions:
            rows.append((str(position), token, str(segments[position]), token, "", ""))
            continue
        shown_token = tokenizer.convert_ids_to_tokens(shown)
        how = ("replaced by [MASK] (80 %)" if shown == mask else
               "kept unchanged (10 %)" if shown == original else "replaced by a random token (10 %)")
        rows.append((str(position), token, str(segments[position]), shown_token, token, how))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    summary = (f"{len(masked.masked_positions)} of {len(input_ids) - 2 - bool(b.ids)} maskable "
               f"tokens chosen ({masking.strategy} masking, p={masking.mlm_probability}); the model must predict "
               "the 'predict' column at those positions and nothing elsewhere.")
    return "\n".join([*lines, "", summary])

