"""BertTokenizer against the Hugging Face tokenizers (pure-Python legacy and Rust) on crafted inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bertkit.tokenization import BasicTokenizer, BertTokenizer, load_vocab

TRICKY = [
    "",
    "   \t\n ",
    "Hello, world! Don't panic.",
    "unaffable résumé naïve CAFÉ Ångström",
    "ΣΑΣ ός ΟΔΥΣΣΕΥΣ",
    "自然语言处理 is NLP; 中文 mixed with English.",
    "日本語のテキスト と 한국어 텍스트",
    "hello [MASK] world[SEP]again [mask] [CLS][CLS]",
    "tabs\tand\nnewlines\r\nand\u00a0nbsp\u2003em\u2028line",
    "control\x00chars\x0b\x1c\x7f\ufffdgone\u200bzero-width",
    "e\u0301 combining vs é precomposed, ﬁ ligature, Ⅻ",
    "emoji 😀👍🏽 and math ∑∫√ and arrows → ←",
    "x" * 101 + " " + "y" * 100,
    "http://example.com/a_b-c?d=e&f=g#h @user #tag",
    "İstanbul straße ǅ ß ﬀ",
    "العربية فارسی עברית हिन्दी ไทย",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ，标点。",
]


@pytest.fixture(scope="module")
def uncased(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def legacy(minilm_dir):
    return transformers.BertTokenizerLegacy.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def rust(minilm_dir):
    return transformers.BertTokenizer.from_pretrained(minilm_dir)


@pytest.mark.parametrize(
    "options",
    [{}, {"do_lower_case": False}, {"strip_accents": False}, {"do_lower_case": False, "strip_accents": True},
     {"tokenize_chinese_chars": False}],
)
def test_tricky_strings_match_legacy(minilm_dir, options):
    ours = BertTokenizer(minilm_dir / "vocab.txt", **options)
    theirs = transformers.BertTokenizerLegacy(vocab_file=str(minilm_dir / "vocab.txt"), **options)
    for text in TRICKY:
        assert ours.tokenize(text) == theirs.tokenize(text), text
        assert ours.encode(text) == theirs.encode(text), text


def test_chinese_vocab_matches_legacy(chinese_vocab):
    ours = BertTokenizer(chinese_vocab)
    theirs = transformers.BertTokenizerLegacy(vocab_file=str(chinese_vocab))
    assert ours.encode("自然语言处理") == [101, 5632, 4197, 6427, 6241, 1905, 4415, 102]
    for text in TRICKY:
        assert ours.tokenize(text) == theirs.tokenize(text), text


def test_wordpiece_pieces(uncased):
    assert uncased.tokenize("unaffable") == ["una", "##ffa", "##ble"]
    assert uncased.tokenize("x" * 101) == ["[UNK]"]
    assert uncased.tokenize("😀") == ["[UNK]"]


def test_basic_tokenizer_steps():
    basic = BasicTokenizer(do_lower_case=True)
    assert basic.tokenize(" \tHeLLo!How  are U?  ") == ["hello", "!", "how", "are", "u", "?"]
    assert basic.tokenize("Héllo 中国") == ["hello", "中", "国"]
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo") == ["Héllo"]
    assert BasicTokenizer(never_split=["[FOO]"]).tokenize("a [FOO] b") == ["a", "[FOO]", "b"]


def test_batch_call_matches_rust(uncased, rust):
    texts = ["A short one.", "A somewhat longer sentence, with punctuation!", "résumé 中文", ""]
    pairs = ["and its pair", "p", "another pair that is quite a bit longer than the others", "x"]
    for kwargs in [
        {"padding": True},
        {"padding": "max_length", "max_length": 24},
        {"padding": True, "truncation": True, "max_length": 9},
        {"padding": True, "truncation": "only_second", "max_length": 14},
        {"padding": "longest", "truncation": "longest_first", "max_length": 7},
    ]:
        ours = uncased(texts, pairs, return_special_tokens_mask=True, return_offsets_mapping=True, **kwargs)
        theirs = rust(texts, pairs, return_special_tokens_mask=True, return_offsets_mapping=True, **kwargs)
        for key in ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask"]:
            assert ours[key] == theirs[key], (key, kwargs)
        for mine, ref in zip(ours["offset_mapping"], theirs["offset_mapping"], strict=True):
            assert mine == [tuple(o) for o in ref], kwargs


def test_only_first_truncation_matches_legacy(uncased, legacy):
    a, b = "one two three four five six seven eight", "nine ten"
    assert uncased.encode(a, b, truncation="only_first", max_length=8) == legacy.encode(
        a, b, truncation="only_first", max_length=8
    )
    with pytest.raises(ValueError, match="first text only"):
        uncased(a, "a much longer second text " * 5, truncation="only_first", max_length=8)


def test_offsets_point_into_the_original_text(uncased):
    text = "Héllo, WORLD! unaffable 中文"
    enc = uncased(text, return_offsets_mapping=True, add_special_tokens=False)
    tokens = uncased.convert_ids_to_tokens(enc["input_ids"])
    pieces = [text[s:e] for s, e in enc["offset_mapping"]]
    assert pieces == ["Héllo", ",", "WORLD", "!", "una", "ffa", "ble", "中", "文"]
    assert tokens[:4] == ["hello", ",", "world", "!"]


def test_tensors_and_shapes(uncased):
    pt = uncased(["a b c", "d"], padding=True, return_tensors="pt")
    assert pt["input_ids"].dtype == torch.int64 and tuple(pt.input_ids.shape) == (2, 5)
    assert pt.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    np_enc = uncased("a b c", return_tensors="np")
    assert isinstance(np_enc["input_ids"], np.ndarray) and np_enc["input_ids"].shape == (1, 5)
    with pytest.raises(ValueError, match="padding=True"):
        uncased(["a b c", "d"], return_tensors="pt")


def test_decode_matches_legacy(uncased, legacy):
    for text in TRICKY[2:8]:
        ids = legacy.encode(text)
        assert uncased.decode(ids) == legacy.decode(ids), text
        assert uncased.decode(ids, skip_special_tokens=True) == legacy.decode(ids, skip_special_tokens=True)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_unicode_matches_legacy(uncased, legacy, text):
    ids = uncased.encode(text)
    assert all(0 <= i < uncased.vocab_size for i in ids)
    assert uncased.tokenize(text) == legacy.tokenize(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200))
def test_ascii_round_trip_is_the_basic_normalisation(uncased, legacy, text):
    assume(not any(special in text for special in uncased.all_special_tokens))  # those stay whole, not normalised
    ids = uncased.encode(text)
    decoded = uncased.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert decoded == " ".join(legacy.basic_tokenizer.tokenize(text))


def test_save_and_reload_in_transformers(uncased, tmp_path):
    uncased.save_pretrained(tmp_path)
    assert load_vocab(tmp_path / "vocab.txt") == uncased.vocab
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["do_lower_case"] is True
    again = BertTokenizer.from_pretrained(tmp_path)
    theirs = transformers.BertTokenizerLegacy.from_pretrained(tmp_path)
    text = "Saved, then loaded: ÉCOLE 中文"
    assert again.encode(text) == uncased.encode(text) == theirs.encode(text)


def test_bad_input_is_named(uncased, tmp_path):
    with pytest.raises(ValueError, match="text must be a string, got NoneType"):
        uncased.encode(None)
    with pytest.raises(ValueError, match=r"text\[1\] must be a string, got int"):
        uncased(["ok", 3])
    with pytest.raises(ValueError, match="2 texts but 1 text pairs"):
        uncased(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        uncased.decode([101, 10**6])
    with pytest.raises(ValueError, match="more than max_length"):
        uncased(["a b c d e f"], padding="max_length", max_length=4)
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        BertTokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no vocab.txt"):
        BertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[SEP\]', '\[CLS\]', '\[MASK\]'\]"):
        BertTokenizer(tmp_path / "vocab.txt")


def test_tokenization_does_not_import_torch():
    code = "import sys, bertkit.tokenization as t; t.BertTokenizer; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_both_tokenizers_split_specials_and_cache_ids_one_way():
    """WordPiece and byte-level BPE share the special-token split (the longest wins) and the bounded id cache."""
    from bertkit.tokenization.lookup import BoundedCache, special_token_pattern

    assert special_token_pattern(["<s>", "<s><s>", "[SEP]"]).split("a<s><s>b[SEP]") == ["a", "<s><s>", "b", "[SEP]",
                                                                                       ""]
    assert special_token_pattern([]) is None
    cache = BoundedCache(2)
    assert cache.put("a", [1]) == [1] and cache.put("b", [2]) == [2]
    cache.put("c", [3])  # full: cleared, not grown
    assert dict(cache) == {"c": [3]}
