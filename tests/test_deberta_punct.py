"""DeBERTa-v2's ``split_by_punct``: every punctuation character its own pre-token, as transformers 5's
DebertaV2Tokenizer (Punctuation isolated, then Metaspace giving every pre-token its ``▁``).

Oracles: transformers' DebertaV2Tokenizer (fast) built from the same ``spm.model`` — one trained by SentencePiece's
trainer, one by bertkit's — for ids, tokens, offsets, pairs, padding and truncation; the Rust ``tokenizers`` library
on the tokenizer.json bertkit writes; and the ``sentencepiece`` library on each punctuation-split piece of text
(the rule of transformers 4's slow tokenizer, written here), where that rule and transformers 5 agree: no space
before a punctuation character and text NFKC leaves alone (otherwise transformers 5 gives a lone ``▁``, as below).
"""

from __future__ import annotations

import json
import string
import unicodedata

import pytest
import sentencepiece
import tokenizers
import transformers
from sentencepiece_fixtures import HARD_TEXT, held_out_lines, training_lines

from bertkit.tokenization import AutoTokenizer
from bertkit.tokenization.sp_families import DebertaV2Tokenizer
from bertkit.tokenization.tokenizer_json import UnsupportedTokenizer
from bertkit.tokenization.unigram_training import train_unigram_folder

PUNCTUATION_TEXT = [
    "Hello, world!", "a , b", "  ,a", ", ", "x.", "don't stop-me now!!!", "“quoted” — dash…", "日本語、テキスト。",
    "$5+3=8 ~ok^ `tick` |pipe| <tag>", "a  ,  b", "(nested [brackets] {braces})", "¿Qué? ¡Sí!", "«guillemets» ‹›",
    "e.g., i.e.; etc.: §3 ¶2 @home #tag %50 &co *star _under_ \\back/", "[CLS] a,[SEP]b. [MASK]!", "..., ...",
    "tab\t,\tnewline\n.\n", "\u3000，full-width！", "〜「括弧」・", "a'b\"c", "٫٬؟ ، ۔", "\u2028.\u2029",
]


def _texts() -> list[str]:
    return PUNCTUATION_TEXT + HARD_TEXT + list(held_out_lines()[::70])


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    """DeBERTa-v2 folders (spm.model + tokenizer_config.json): SentencePiece's trainer, and bertkit's."""
    root = tmp_path_factory.mktemp("deberta-punct")
    text = root / "train.txt"
    text.write_text("\n".join(training_lines()[::3]) + "\n", encoding="utf-8")
    (root / "sentencepiece").mkdir()
    sentencepiece.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(root / "sentencepiece" / "m"), vocab_size=800, character_coverage=0.995,
        num_threads=1, minloglevel=2, pad_id=0, unk_id=3, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]"],
        pad_piece="[PAD]", unk_piece="[UNK]")
    (root / "sentencepiece" / "m.model").rename(root / "sentencepiece" / "spm.model")
    small = root / "small.txt"  # bertkit's trainer on fewer lines (the suite's time), nmt_nfkc from the other
    small.write_text("\n".join(training_lines()[:600]) + "\n", encoding="utf-8")
    train_unigram_folder([str(small)], root / "bertkit", 300, "deberta-v2", character_coverage=0.995,
                         normalizer_from=root / "sentencepiece" / "spm.model")
    return {"sentencepiece": root / "sentencepiece", "bertkit": root / "bertkit"}


def _pair(folder, **settings):
    ours = DebertaV2Tokenizer.from_pretrained(folder, split_by_punct=True, **settings)
    theirs = transformers.DebertaV2Tokenizer.from_pretrained(folder, split_by_punct=True, **settings)
    return ours, theirs


def _assert_equal(ours, theirs, text, **kwargs):
    got = ours(text, return_offsets_mapping=True, **kwargs)
    expected = theirs(text, return_offsets_mapping=True, **kwargs)
    assert got["input_ids"] == expected["input_ids"], text
    assert ours.convert_ids_to_tokens(got["input_ids"]) == theirs.convert_ids_to_tokens(expected["input_ids"]), text
    assert got["offset_mapping"] == [tuple(span) for span in expected["offset_mapping"]], text
    assert got["token_type_ids"] == expected["token_type_ids"], text


@pytest.mark.parametrize("trainer", ["sentencepiece", "bertkit"])
@pytest.mark.parametrize("lower", [False, True])
def test_ids_tokens_and_offsets_equal_transformers(folders, trainer, lower):
    ours, theirs = _pair(folders[trainer], do_lower_case=lower)
    for text in _texts():
        _assert_equal(ours, theirs, text)
    assert ours.tokenize("Hello, world!") != DebertaV2Tokenizer.from_pretrained(folders[trainer]).tokenize(
        "Hello, world!")  # the setting changes the tokens: "," stands alone with its own ▁


def test_pairs_truncation_and_padding_equal_transformers(folders):
    ours, theirs = _pair(folders["sentencepiece"])
    texts = _texts()
    first, second = texts[:24], texts[24:48]
    for kwargs in (dict(padding=True), dict(truncation=True, max_length=14, padding="max_length"),
                   dict(truncation="longest_first", max_length=31, padding=True)):
        got, expected = ours(first, second, **kwargs), theirs(first, second, **kwargs)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert got[key] == expected[key], (key, kwargs)
    for a, b in zip(first, second, strict=True):
        _assert_equal(ours, theirs, a, text_pair=b)


def test_ids_without_offsets_equal_the_ids_with_offsets(folders):
    ours, _ = _pair(folders["sentencepiece"])
    for text in _texts():
        assert ours(text)["input_ids"] == ours(text, return_offsets_mapping=True)["input_ids"], text
        assert ours.encode(text) == ours(text)["input_ids"]


def _is_punctuation(char: str) -> bool:
    """transformers 4's _is_punctuation: ASCII punctuation or a Unicode P* character."""
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def _slow_split(text: str) -> list[str]:
    """transformers 4's DebertaV2 _run_split_on_punc: each punctuation character alone, the runs between kept."""
    pieces: list[str] = []
    for char in text:
        if _is_punctuation(char):
            pieces += [char, ""]
        elif pieces:
            pieces[-1] += char
        else:
            pieces.append(char)
    return [p for p in pieces if p]


def test_ids_equal_sentencepiece_on_each_punctuation_split_piece(folders):
    ours, _ = _pair(folders["sentencepiece"])
    reference = sentencepiece.SentencePieceProcessor(model_file=str(folders["sentencepiece"] / "spm.model"))
    checked = 0
    for text in _texts():
        space_before_punctuation = any(a.isspace() and _is_punctuation(b) for a, b in zip(text, text[1:], strict=False))
        if space_before_punctuation or unicodedata.normalize("NFKC", text) != text or text[:1].isspace() \
                or "[" in text:
            continue  # where transformers 5 and the slow rule differ (a lone ▁), or special tokens are cut out
        expected = [i for chunk in _slow_split(text) for i in reference.encode(chunk)]
        assert ours.encode(text, add_special_tokens=False) == expected, text
        checked += 1
    assert checked > 40


def test_a_space_before_punctuation_gives_transformers_5s_lone_space_piece(folders):
    ours, _ = _pair(folders["sentencepiece"])
    reference = sentencepiece.SentencePieceProcessor(model_file=str(folders["sentencepiece"] / "spm.model"))
    slow = [i for chunk in _slow_split("a , b") for i in reference.encode(chunk)]
    lone = reference.piece_to_id("▁")  # transformers 5's piece for the space before ","; checked against it above
    assert ours.encode("a , b", add_special_tokens=False) == [slow[0], lone, *slow[1:]]


def test_saved_folders_read_back_in_transformers_and_tokenizers(folders, tmp_path):
    ours, _ = _pair(folders["sentencepiece"], do_lower_case=True)
    ours.save_pretrained(tmp_path / "ours")
    assert json.loads((tmp_path / "ours" / "tokenizer_config.json").read_text())["split_by_punct"] is True
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path / "ours")
    rust = tokenizers.Tokenizer.from_file(str(tmp_path / "ours" / "tokenizer.json"))
    again = AutoTokenizer.from_pretrained(tmp_path / "ours")
    assert again.settings == {"do_lower_case": True, "split_by_punct": True}
    for text in _texts():
        ids = ours(text)["input_ids"]
        assert ids == theirs(text)["input_ids"] == rust.encode(text).ids == again(text)["input_ids"], text


def test_a_tokenizer_json_transformers_saved_reads_as_split_by_punct(folders, tmp_path):
    _, theirs = _pair(folders["sentencepiece"])
    theirs.save_pretrained(tmp_path)
    (tmp_path / "spm.model").unlink(missing_ok=True)  # only tokenizer.json is left to read
    ours = AutoTokenizer.from_pretrained(tmp_path)
    assert type(ours) is DebertaV2Tokenizer and ours.settings["split_by_punct"] is True
    for text in _texts()[:60]:
        _assert_equal(ours, theirs, text)


def test_sampling_keeps_punctuation_apart(folders):
    ours, _ = _pair(folders["sentencepiece"])
    text = "well-known, long-standing (semi-)automatic tokenization!"
    ours.enable_sampling(alpha=0.1, nbest_size=-1, seed=0)
    drawn = [ours.tokenize(text) for _ in range(20)]
    ours.disable_sampling()
    assert len({tuple(tokens) for tokens in drawn}) > 1
    for tokens in drawn:
        assert "".join(tokens) == "".join(ours.tokenize(text))  # the same text, cut otherwise
        assert all(t.strip("▁") in set("-,()!") or not set(t) & set("-,()!") for t in tokens)


def test_bad_settings_and_files_are_refused(folders, tmp_path):
    with pytest.raises(ValueError, match="split_by_punct"):
        DebertaV2Tokenizer.from_pretrained(folders["sentencepiece"], split_by_punct="yes")
    transformers.AlbertTokenizer.from_pretrained(folders["sentencepiece"]).save_pretrained(tmp_path / "albert")
    path = tmp_path / "albert" / "tokenizer.json"
    data = json.loads(path.read_text())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Punctuation", "behavior": "Isolated"},
                                                                   data["pre_tokenizer"]]}
    path.write_text(json.dumps(data))
    (tmp_path / "albert" / "spiece.model").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="Punctuation pre_tokenizer is DeBERTa-v2's split_by_punct"):
        AutoTokenizer.from_pretrained(tmp_path / "albert")
    data["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "MergedWithPrevious"
    path.write_text(json.dumps(data))
    with pytest.raises(UnsupportedTokenizer, match="Punctuation isolated"):
        AutoTokenizer.from_pretrained(tmp_path / "albert")
