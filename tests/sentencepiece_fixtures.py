"""Shared by the SentencePiece tests: real models trained by SentencePiece's own trainer on installed text, hard text,
and the comparison of bertkit's encoding with the ``sentencepiece`` library's (ids, pieces, offsets, decoding)."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

from bertkit import corpora

# name → trainer options; every model has 1,000 pieces, trained on training_lines() (~3,600 lines, 27 languages).
MODELS = {
    "unigram": {"model_type": "unigram"},
    "unigram-bytes": {"model_type": "unigram", "byte_fallback": True, "split_digits": True},
    "unigram-identity": {"model_type": "unigram", "normalization_rule_name": "identity",
                         "user_defined_symbols": ["<sep>", "<cls>"], "control_symbols": ["<ctl>"]},
    "bpe": {"model_type": "bpe"},
    "bpe-bytes": {"model_type": "bpe", "byte_fallback": True, "split_digits": True},
    "bpe-identity": {"model_type": "bpe", "normalization_rule_name": "identity",
                     "user_defined_symbols": ["<sep>", "<cls>"], "control_symbols": ["<ctl>"],
                     "remove_extra_whitespaces": False},
}

HARD_TEXT = [
    "", " ", "   a   b  ", "\t\ttab\tsep\n", "Ｈｅｌｌｏ　ｗｏｒｌｄ", "①②③ ½ ﬁ ㍿", "日本語のテキスト", "中文分词测试",
    "한국어 텍스트", "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷", "ctrl\x00\x01\x7f\u200bzero\u200dwidth", "café naïve Å", "e\u0301 vs é",
    "12345 67.89 ١٢٣ ௧௨", "<sep> <cls> foo bar <ctl>", "a<sep>b<cls>", "ǅ ŉ ẞ ß", "\u3000\u00a0x\u2028y\u2029z",
    "x" * 300, "-" * 80, "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "Ελληνικά ς", "العربية", "ไทย", "हिन्दी", "\r\n\r\n", "a\u0000b", "ｶﾀｶﾅ",
    "Ǆ ǈ ǋ", "   leading and trailing   ", "don't stop-me now!!!", "<unk> <s> </s> <pad>", "\ufeffBOM",
]


@functools.lru_cache(maxsize=1)
def training_lines() -> tuple[str, ...]:
    """1,000 lines of the Python docs and 100 of the Debian handbook in each of its 26 languages."""
    docs = [line for line in itertools.islice(corpora.python_docs_lines(), 20_000) if line.strip()][:1000]
    handbook = [line for lang in corpora.debian_handbook_languages()
                for line in itertools.islice(corpora.debian_handbook_lines(lang), 100)]
    return tuple(docs + handbook)


@functools.lru_cache(maxsize=1)
def held_out_lines() -> tuple[str, ...]:
    """Lines the models were not trained on: more of the docs, and the handbook further on, every language."""
    docs = [line for line in itertools.islice(corpora.python_docs_lines(), 20_000, 60_000) if line.strip()]
    handbook = [line for lang in corpora.debian_handbook_languages()
                for line in itertools.islice(corpora.debian_handbook_lines(lang), 300, 500)]
    return tuple(docs + handbook)


def train_model(folder: Path, name: str, vocab_size: int = 1000) -> Path:
    """Train one of MODELS with SentencePiece's trainer into ``folder``; return the ``.model`` path."""
    import sentencepiece

    text = folder / "train.txt"
    if not text.exists():
        text.write_text("\n".join(training_lines()) + "\n", encoding="utf-8")
    prefix = folder / name
    sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(prefix), vocab_size=vocab_size,
                                             character_coverage=0.995, num_threads=1, minloglevel=2,
                                             **MODELS[name])
    return prefix.with_suffix(".model")


def char_offsets(text: str) -> dict[int, int]:
    """UTF-8 byte offset → character offset, for SentencePiece's byte spans."""
    table, position = {}, 0
    for i, char in enumerate(text):
        table[position] = i
        position += len(char.encode("utf-8"))
    table[position] = len(text)
    return table


def difference(ours, reference, text: str) -> str | None:
    """How bertkit's encoding of ``text`` differs from the sentencepiece library's (None when identical)."""
    proto = reference.encode(text, return_type="proto")
    expected = [(p.piece, p.id) for p in proto.pieces]
    tokens = ours.encode_tokens(text)
    got = [(t.piece, t.id) for t in tokens]
    if got != expected:
        return f"{text!r}: pieces {got} != {expected}"
    to_char = char_offsets(text)
    spans = [(to_char[p.begin], to_char[p.end]) for p in proto.pieces]
    if [(t.start, t.end) for t in tokens] != spans:
        return f"{text!r}: spans {[(t.start, t.end) for t in tokens]} != {spans}"
    decoded, expected_text = ours.decode([t.id for t in tokens]), reference.decode([p.id for p in proto.pieces])
    if decoded != expected_text:
        return f"{text!r}: decodes to {decoded!r} != {expected_text!r}"
    return None
