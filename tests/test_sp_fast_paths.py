"""The fast paths of SentencePiece encoding give the ``sentencepiece`` library's ids exactly.

``SentencePieceProcessor.encode`` (ids) skips spans: the normaliser replaces characters with one ``str.translate``
when no rule spans two of them, and words are segmented once and cached, the float32 running score tracked by a
bound. Oracle: the ``sentencepiece`` library on models its trainer made (tests/sentencepiece_fixtures.py), on
held-out lines, HARD_TEXT, and long texts of many lines (a large running score, so close decisions are redone).
"""

from __future__ import annotations

import pytest
import sentencepiece
from sentencepiece_fixtures import HARD_TEXT, MODELS, held_out_lines, train_model

from bertkit.tokenization.sentencepiece import SentencePieceProcessor

SAMPLE = 20


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("spm-fast")
    return {name: train_model(folder, name) for name in MODELS}


def _texts() -> list[str]:
    lines = list(held_out_lines()[::SAMPLE])
    long_texts = [" ".join(lines[i:i + 60]) for i in range(0, len(lines), 60)]  # running scores in the thousands
    ties = ["-" * n + " " + "-" * m for n in range(1, 30, 3) for m in range(1, 30, 7)]  # equal-score paths
    return lines + HARD_TEXT + long_texts + ties


@pytest.mark.parametrize("name", MODELS)
def test_encode_ids_equal_sentencepiece_cold_and_warm(models, name):
    reference = sentencepiece.SentencePieceProcessor(model_file=str(models[name]))
    ours = SentencePieceProcessor(models[name])
    texts = _texts()
    expected = [reference.encode(text) for text in texts]
    for _ in range(2):  # the first pass fills the word cache, the second reads it
        mismatches = [(t, got, want) for t, want in zip(texts, expected, strict=True)
                      if (got := ours.encode(t)) != want]
        assert mismatches[:3] == []


@pytest.mark.parametrize("name", MODELS)
def test_encode_ids_equal_the_ids_of_the_spans_path(models, name):
    ours = SentencePieceProcessor(models[name])
    for text in _texts()[::3]:
        assert ours.encode(text) == [t.id for t in ours.encode_tokens(text)], text


@pytest.mark.parametrize("name", ["unigram", "unigram-identity", "bpe-identity"])
def test_normalize_text_equals_the_aligned_normalisation(models, name):
    normalizer = SentencePieceProcessor(models[name]).normalizer
    extra = ["a ¨ b", "x\u00a8", "  \u00a8 ", "\x01\x02", " \x01 ", "ｶﾞ", "ﬁ\u0301", "A\u030a", "½ ½"]
    for text in _texts() + extra:
        assert normalizer.normalize_text(text) == normalizer.normalize(text)[0], text


def test_the_word_cache_is_bounded(models, monkeypatch):
    from bertkit.tokenization import sp_words

    monkeypatch.setattr(sp_words, "CACHE_LIMIT", 5)
    reference = sentencepiece.SentencePieceProcessor(model_file=str(models["unigram"]))
    ours = SentencePieceProcessor(models["unigram"])
    for text in held_out_lines()[:200]:
        assert ours.encode(text) == reference.encode(text)
        assert len(ours.words.ids) <= 5 + len(text.split()) + 1
