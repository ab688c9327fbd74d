"""bertkit builds SentencePiece's ``nmt_nfkc`` / ``nfkc`` charsmaps itself, and SentencePiece normalises with them as
with its own.

Oracles: the ``sentencepiece`` library — its trainer writes models with ``normalization_rule_name`` nmt_nfkc and nfkc
(the reference rules, decoded rule by rule from their double-array tries), and its processor loads bertkit's
charsmap and normalises text with it. Python's ``unicodedata`` (Unicode 14 in Python 3.11) stands in for ICU, so the
only rules allowed to differ are those of characters ``unicodedata`` does not know yet.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata

import pytest
import sentencepiece
from sentencepiece_fixtures import HARD_TEXT, held_out_lines, training_lines

from bertkit.tokenization.charsmap import PrecompiledCharsmap
from bertkit.tokenization.charsmap_builder import (
    compile_charsmap,
    nfkc_charsmap,
    nmt_nfkc_charsmap,
    normalizer_spec,
)
from bertkit.tokenization.sentencepiece import SentencePieceProcessor
from bertkit.tokenization.sentencepiece_model import load_model, serialize_model
from bertkit.tokenization.unigram_training import train_unigram_folder

HARDER = ["Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ ｱｲｳｴｵ ｶﾞｷﾞ", "ﬁﬂﬃ ﬀ ĳ Ǳ ǆ ㍻ ㌀ ℡ ™ ℃ ㎏", "x²³ ½ ¼ ⅛ ① ⑴ ⒈ Ⅻ ⅻ",
          "e\u0301 ｅ\u0301 A\u030a ﬁ\u0301 ᄀ\u1161\u11a8 ㄱㅏㄱ", "tab\tnl\nvt\x0bff\x0ccr\r del\x7f \x01\x1f",
          "zw\u200bsp\u200cnj\u200dj \u2028ls\u2029ps \ufeffbom \ufffdrepl \u2581lower", "～ ~ 〜 \u3000 \u00a0nbsp",
          "𝐀𝐁𝐂 𝕏 𝟘𝟙 ℌ ℍ ℕ", "Ω Ω K Å ǅ ﹏ ︵ ︶", "ʰʲ ᵃᵇ ₐₑ ⁿ ᴬ ꜰ", "\u061cArabic mark \u0627\u0644 ﻻ ﷺ"]


def _sentencepiece_model(folder, rule: str):
    """A model SentencePiece's trainer writes with ``normalization_rule_name=rule``."""
    text = folder / "train.txt"
    text.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(input=str(text), model_prefix=str(folder / rule), vocab_size=400,
                                             character_coverage=0.995, num_threads=1, minloglevel=2,
                                             normalization_rule_name=rule)
    return folder / f"{rule}.model"


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("charsmap")
    return {rule: _sentencepiece_model(folder, rule) for rule in ("nmt_nfkc", "nfkc")}


def _known(text: str) -> bool:
    """Whether every character is assigned in Python's Unicode data (newer characters may normalise otherwise)."""
    return all(unicodedata.category(c) != "Cn" for c in text)


@pytest.mark.parametrize("rule, build", [("nmt_nfkc", nmt_nfkc_charsmap), ("nfkc", nfkc_charsmap)])
def test_rules_equal_sentencepiece_trainers_but_for_characters_newer_than_unicodedata(references, rule, build):
    theirs = PrecompiledCharsmap(load_model(references[rule]).normalizer_spec["precompiled_charsmap"]).rules()
    ours = PrecompiledCharsmap(build()).rules()
    differing = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert {k for k in differing if _known(k)} == set()
    assert len(differing) < 0.005 * len(theirs) and len(ours) > 200_000


def test_compiled_charsmaps_read_back_their_rules_and_nothing_else():
    rules = {"a": "b", "ab": "X", "abc": "", "é": "e", "e\u0301": "é", "ﬁ": "fi", "\u3000": " ", "x": "x y"}
    charsmap = PrecompiledCharsmap(compile_charsmap(rules))
    assert charsmap.rules() == rules
    assert charsmap.longest_match(b"abd", 0) == (b"X", 2)
    assert charsmap.longest_match(b"zab", 0) is None
    with pytest.raises(ValueError, match="empty"):
        compile_charsmap({"": "x"})


def _probe_texts() -> list[str]:
    """Every assigned code point, 64 to a text; letters with combining marks; Hangul jamo spelled several ways."""
    codes = [c for c in range(1, 0x30000) if not 0xD800 <= c <= 0xDFFF and _known(chr(c))]
    chunks = ["".join(map(chr, codes[i:i + 64])) for i in range(0, len(codes), 64)]
    combining = "\u0300\u0301\u0302\u0308\u030a\u030c\u0323\u0327"
    marks = ["".join(f"{base}{mark}" for base in "aeiouAEIOUnNcCsSzZyYｅＡ") for mark in combining]
    jamo = ["ᄀ\u1161 ㄱㅏ ᄀ\u1161\u11a8 ㄱㅏㄱ ﾡﾂ 가각"]
    return chunks + marks + jamo + HARD_TEXT + HARDER


def test_sentencepiece_normalises_with_bertkits_charsmap_as_with_its_own(references):
    theirs = sentencepiece.SentencePieceProcessor(model_file=str(references["nmt_nfkc"]))
    model = load_model(references["nmt_nfkc"])
    model.normalizer_spec["precompiled_charsmap"] = nmt_nfkc_charsmap()
    ours = sentencepiece.SentencePieceProcessor(model_proto=serialize_model(model))
    mismatches = [t for t in _probe_texts() if ours.normalize(t) != theirs.normalize(t)]
    assert mismatches == []


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_trained_nmt_nfkc_models_normalise_and_encode_as_sentencepiece(references, tmp_path, model_type):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    folder = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "bertkit.cli", "train-tokenizer", str(text), "-o", str(folder),
                    "--model-type", "sp-bpe" if model_type == "bpe" else "unigram", "--vocab-size", "400",
                    "--character-coverage", "0.995", "--family", "t5", "--normalization", "nmt_nfkc"],
                   check=True, capture_output=True)
    model = folder / "spiece.model"
    assert load_model(model).normalizer_spec["name"] == "nmt_nfkc"
    library = sentencepiece.SentencePieceProcessor(model_file=str(model))
    reference = sentencepiece.SentencePieceProcessor(model_file=str(references["nmt_nfkc"]))
    ours = SentencePieceProcessor(model)
    for line in HARD_TEXT + HARDER + list(held_out_lines()[::500]):
        assert library.normalize(line) == reference.normalize(line), line
        assert ours.encode(line) == library.encode(line), line
        assert [t.id for t in ours.encode_tokens(line)] == library.encode(line), line
    assert library.encode("Ｈｅｌｌｏ", out_type=str) == library.encode("Hello", out_type=str)


def test_an_unknown_normalization_or_two_sources_are_refused(references, tmp_path):
    with pytest.raises(ValueError, match="nfkc_cf"):
        normalizer_spec("nfkc_cf")
    text = tmp_path / "text.txt"
    text.write_text("a b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not both"):
        train_unigram_folder([str(text)], tmp_path / "out", 50, normalizer_from=references["nfkc"],
                             normalization="nmt_nfkc")
