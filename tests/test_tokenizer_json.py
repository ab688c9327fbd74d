"""Folders with a tokenizer.json and no vocab.txt (as current transformers and sentence-transformers save them),
against transformers / tokenizers as the oracle; AutoTokenizer's dispatch; the tokenizer.json pipelines bertkit
refuses, each shown to tokenize differently from BERT's."""

import copy
import json
import logging
import random
import shutil
import subprocess
import sys

import pytest
import tokenizers
import transformers

from bertkit import AutoTokenizer as TopLevelAutoTokenizer
from bertkit.serving.settings import ServerSettings
from bertkit.tokenization import AutoTokenizer, BertTokenizer, UnsupportedTokenizer
from bertkit.tokenization.chinese import JiebaBertTokenizer

FRAGMENTS = [
    "Hello", "world", "Don't", "panic!", "unaffable", "résumé", "naïve", "CAFÉ", "Ångström", "façade", "Zoë",
    "İstanbul", "straße", "ǅemal", "ﬁnance", "Ⅻ", "ＦＵＬＬ", "ｗｉｄｔｈ", "，", "。", "自然语言处理", "中文", "漢字",
    "日本語の", "テキスト", "한국어", "텍스트", "العربية", "עברית", "हिन्दी", "ไทย", "Ελληνικά", "Москва", "ПРИВЕТ",
    "😀", "👍🏽", "∑∫√", "→", "€100", "$5.00", "©2024", "x^2+y^2", "a_b-c", "http://example.com/a_b?c=d&e=f#g",
    "@user", "#tag", "(parens)", "[brackets]", "\"quoted\"", "'single'", "…", "—", "«guillemets»", "¿Qué?", "¡Sí!",
    "x" * 101, "y" * 100, "antidisestablishmentarianism", "[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]",
    "[MASK]ed", "a[SEP]b", "3.14159", "1,000,000", "ĲSSELMEER", "Łódź", "Dvořák", "Øresund", "ÀÉÎÕÜ", "tiếng Việt",
]
# Spaces of every kind, control characters (deleted: their neighbours join), zero-width and soft-hyphen characters.
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "", "\u200b", "\x00", "\x7f",
              "\ufffd", "\x0b", "\u2028", "\x85", "\u00ad", "-", ", ", ". "]
OPTIONS = {
    "uncased": {},
    "cased": {"do_lower_case": False},
    "uncased-strip-true": {"strip_accents": True},
    "uncased-strip-false": {"strip_accents": False},
    "cased-strip-true": {"do_lower_case": False, "strip_accents": True},
    "cased-strip-none": {"do_lower_case": False, "strip_accents": None},
    "no-chinese-chars": {"tokenize_chinese_chars": False},
}


def varied_lines(n: int, seed: int = 0) -> list[str]:
    """Random lines of fragments in many scripts, joined by assorted spaces and control characters.

    No Σ and no decomposed accents: those are the two known differences from the Rust tokenizer, tested below.
    """
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 12))]
        line = parts[0] + "".join(rng.choice(SEPARATORS) + part for part in parts[1:])
        case = rng.random()
        lines.append(line.upper() if case < 0.2 else line.lower() if case < 0.35 else line)
    return lines


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return varied_lines(300)


@pytest.fixture(scope="module")
def saved(minilm_dir, tmp_path_factory):
    """Folder saved by transformers' BertTokenizerFast with the given OPTIONS (tokenizer.json, no vocab.txt)."""
    folders = {}

    def make(name: str):
        if name not in folders:
            folder = tmp_path_factory.mktemp(name)
            transformers.BertTokenizerFast.from_pretrained(minilm_dir, **OPTIONS[name]).save_pretrained(folder)
            (folder / "vocab.txt").unlink(missing_ok=True)
            assert (folder / "tokenizer.json").is_file()
            folders[name] = folder
        return folders[name]

    return make


@pytest.fixture(scope="module")
def minilm_document(minilm_dir) -> dict:
    """MiniLM's tokenizer.json, without the padding / truncation state its last call left there."""
    document = json.loads((minilm_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return {**document, "padding": None, "truncation": None}


def json_only_folder(folder, document: dict):
    """A folder holding nothing but this tokenizer.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return folder


def assert_same_encodings(ours, theirs, n_lines: int) -> None:
    for key in ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask"]:
        assert ours[key] == theirs[key], key
    for i in range(n_lines):
        assert ours["offset_mapping"][i] == [tuple(span) for span in theirs["offset_mapping"][i]], i


# -- folders saved by transformers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", OPTIONS)
def test_ids_tokens_offsets_match_transformers(saved, name, lines):
    folder = saved(name)
    ours, theirs = BertTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert type(theirs).__name__ == "BertTokenizer"
    options = OPTIONS[name]
    assert ours.basic.do_lower_case is options.get("do_lower_case", True)
    assert ours.basic.strip_accents is options.get("strip_accents")
    assert ours.basic.tokenize_chinese_chars is options.get("tokenize_chinese_chars", True)
    assert [ours.tokenize(line) for line in lines] == [theirs.tokenize(line) for line in lines]
    kwargs = {"return_offsets_mapping": True, "return_special_tokens_mask": True}
    assert_same_encodings(ours(lines, **kwargs), theirs(lines, **kwargs), len(lines))


@pytest.mark.parametrize("name", ["uncased", "cased"])
def test_pairs_truncation_padding_match_transformers(saved, name, lines):
    folder = saved(name)
    ours, theirs = BertTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    texts, pairs = lines[0::2], lines[1::2]
    for kwargs in [  # even budgets for pairs (max_length - 3): odd ones are a known difference, tested below
        {"padding": True},
        {"padding": "max_length", "max_length": 81, "truncation": True},
        {"padding": True, "truncation": True, "max_length": 17},
        {"padding": "longest", "truncation": "longest_first", "max_length": 9},
    ]:
        kwargs.update(return_offsets_mapping=True, return_special_tokens_mask=True)
        assert_same_encodings(ours(texts, pairs, **kwargs), theirs(texts, pairs, **kwargs), len(texts))
        assert_same_encodings(ours(texts, **kwargs), theirs(texts, **kwargs), len(texts))


def test_sentence_transformers_save_loads(minilm_dir, tmp_path, lines):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")
    model.save(str(tmp_path))
    assert (tmp_path / "tokenizer.json").is_file() and not (tmp_path / "vocab.txt").exists()
    ours = AutoTokenizer.from_pretrained(tmp_path)
    theirs = model.tokenize(lines)  # padded to the batch's longest, truncated to max_seq_length
    mine = ours(lines, padding=True, truncation=True, max_length=model.max_seq_length)
    for key in ["input_ids", "token_type_ids", "attention_mask"]:
        assert mine[key] == theirs[key].tolist(), key
    ServerSettings(model_dir=tmp_path).checked()  # `bertkit serve` takes the folder too


# -- tokenizer.json alone, against the tokenizers library -----------------------------------------------------


def _rust(document: dict) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_str(json.dumps(document))


def assert_matches_rust(ours: BertTokenizer, rust: tokenizers.Tokenizer, lines: list[str]) -> None:
    """ids, tokens, segment ids and offsets of singles and pairs, special tokens included."""
    singles = rust.encode_batch(lines)
    pairs = rust.encode_batch(list(zip(lines[0::2], lines[1::2], strict=False)))
    mine = ours(lines, return_offsets_mapping=True)
    for i, (line, ref) in enumerate(zip(lines, singles, strict=True)):
        assert mine["input_ids"][i] == ref.ids, line
        assert ours.convert_ids_to_tokens(mine["input_ids"][i]) == ref.tokens, line
        spans = [span for span, special in zip(ref.offsets, ref.special_tokens_mask, strict=True) if not special]
        assert [span for span in mine["offset_mapping"][i] if span != (0, 0)] == [s for s in spans if s != (0, 0)]
    mine = ours(lines[0::2], lines[1::2])
    assert mine["input_ids"] == [e.ids for e in pairs]
    assert mine["token_type_ids"] == [e.type_ids for e in pairs]


def test_json_only_folder_matches_rust(minilm_document, tmp_path, lines):
    folder = json_only_folder(tmp_path, minilm_document)
    assert_matches_rust(BertTokenizer.from_pretrained(folder), _rust(minilm_document), lines)


def test_stored_truncation_and_padding_are_call_state(minilm_dir, tmp_path):
    """MiniLM's tokenizer.json stores truncation and padding at 128 from its last call; like transformers, bertkit
    truncates and pads only when asked, to max_length or model_max_length (512 in its tokenizer_config.json)."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(minilm_dir / name, tmp_path / name)
    ours, theirs = BertTokenizer.from_pretrained(tmp_path), transformers.BertTokenizer.from_pretrained(tmp_path)
    text = "word " * 600
    for kwargs in [{}, {"truncation": True}, {"padding": True}, {"truncation": True, "max_length": 20}]:
        assert ours([text, "short"], **kwargs)["input_ids"] == theirs([text, "short"], **kwargs)["input_ids"], kwargs
    assert len(ours(text)["input_ids"]) == 602 and len(ours(text, truncation=True)["input_ids"]) == 512


def _normalizers(*steps: dict) -> dict:
    return {"type": "Sequence", "normalizers": list(steps)}


BERT_CASED_KEEP_ACCENTS = {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                           "strip_accents": False, "lowercase": False}
EQUIVALENTS = {  # pipelines spelled differently from BertTokenizerFast's that bertkit maps onto its own
    "normalizer-sequence-of-one": {"normalizer": _normalizers(
        {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None,
         "lowercase": True})},
    "bert-then-lowercase": {"normalizer": _normalizers(BERT_CASED_KEEP_ACCENTS, {"type": "Lowercase"})},
    "lowercase-nfc-bert": {"normalizer": _normalizers({"type": "Lowercase"}, {"type": "NFC"},
                                                       BERT_CASED_KEEP_ACCENTS)},
    "cased-no-config": {"normalizer": BERT_CASED_KEEP_ACCENTS},
    "whitespace-split-punctuation": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}]}},
    "punctuation-whitespace-split": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Punctuation", "behavior": "Isolated"}, {"type": "WhitespaceSplit"}]}},
    "bert-processing": {"post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]}},
    "short-words": {"model": {"max_input_chars_per_word": 12}},
}


def _variant(document: dict, change: dict) -> dict:
    """A copy of the document with top-level parts replaced (and the model's fields updated; vocabulary copied)."""
    out = {**document, "model": {**document["model"], "vocab": dict(document["model"]["vocab"])}}
    for key, value in change.items():
        if key == "model":
            out["model"].update(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.mark.parametrize("name", EQUIVALENTS)
def test_equivalent_pipelines_match_rust(minilm_document, tmp_path, lines, name):
    document = _variant(minilm_document, EQUIVALENTS[name])
    folder = json_only_folder(tmp_path, document)
    assert_matches_rust(BertTokenizer.from_pretrained(folder), _rust(document), lines)


def test_config_overrides_tokenizer_json_as_transformers_does(saved, tmp_path, lines, caplog):
    folder = shutil.copytree(saved("uncased"), tmp_path / "folder")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "do_lower_case": False}))
    with caplog.at_level(logging.WARNING):
        ours = BertTokenizer.from_pretrained(folder)
    assert "do_lower_case=False, overriding tokenizer.json's True" in caplog.text
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    assert [ours.tokenize(line) for line in lines] == [theirs.tokenize(line) for line in lines]
    assert ours.tokenize("Hello") == ["[UNK]"]  # cased words, uncased vocabulary


# -- both vocab.txt and tokenizer.json -----------------------------------------------------------------------


def test_both_files_agree_in_the_minilm_folder(minilm_dir, lines):
    both = BertTokenizer.from_pretrained(minilm_dir)
    txt_only = BertTokenizer(minilm_dir / "vocab.txt")
    assert both.vocab == txt_only.vocab
    assert [both.encode(line) for line in lines] == [txt_only.encode(line) for line in lines]


def _both_files(minilm_dir, tmp_path, document: dict, config: dict | None = None):
    folder = json_only_folder(tmp_path, document)
    shutil.copy(minilm_dir / "vocab.txt", folder / "vocab.txt")
    if config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_both_files_must_agree(minilm_dir, minilm_document, tmp_path):
    cased = _variant(minilm_document, {"normalizer": BERT_CASED_KEEP_ACCENTS})
    with pytest.raises(ValueError, match=r"vocab.txt with tokenizer_config.json means do_lower_case=True, but "
                                         r"tokenizer.json says False; fix the folder"):
        BertTokenizer.from_pretrained(_both_files(minilm_dir, tmp_path / "a", cased))
    # The same file agrees once the config states what vocab.txt alone cannot.
    agreed = _both_files(minilm_dir, tmp_path / "b", cased, {"do_lower_case": False, "strip_accents": False})
    assert BertTokenizer.from_pretrained(agreed).tokenize("Héllo") == ["[UNK]"]
    renamed = _variant(minilm_document, {})
    renamed["model"]["vocab"]["hello!"] = renamed["model"]["vocab"].pop("hello")
    with pytest.raises(ValueError, match=r"hold different vocabularies \(first difference: \('hello.*7592\)"):
        BertTokenizer.from_pretrained(_both_files(minilm_dir, tmp_path / "c", renamed))


# -- refusals -------------------------------------------------------------------------------------------------


def _trained(kind: str, lines: list[str]) -> tokenizers.Tokenizer:
    """A small tokenizer of each non-WordPiece kind, trained on the test lines."""
    if kind == "byte-level-bpe":
        trainer = tokenizers.ByteLevelBPETokenizer()
    elif kind == "char-bpe":
        trainer = tokenizers.CharBPETokenizer()
    elif kind == "sentencepiece-bpe":
        trainer = tokenizers.SentencePieceBPETokenizer()
    elif kind == "unigram":
        trainer = tokenizers.SentencePieceUnigramTokenizer()
        trainer.train_from_iterator(lines, vocab_size=300, show_progress=False)
        return trainer
    else:
        words = sorted({word for line in lines for word in line.split()})
        tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(
            {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(words)}}, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
        return tokenizer
    trainer.train_from_iterator(lines, vocab_size=400, min_frequency=1, show_progress=False)
    return trainer


@pytest.mark.parametrize("kind, message", [
    ("byte-level-bpe", r"uses a byte-level BPE model \(GPT-2 / RoBERTa\); bertkit reads WordPiece only — byte-level "
                       r"BPE comes with the GPT issue"),
    ("char-bpe", r"uses a BPE model \(character-level merges, not WordPiece\); bertkit reads WordPiece only"),
    ("sentencepiece-bpe", r"uses a SentencePiece-style BPE model"),
    ("unigram", r"uses a Unigram model \(SentencePiece: ALBERT / T5 / XLNet / XLM-RoBERTa\)"),
    ("wordlevel", r"uses a WordLevel model \(whole words, no subword pieces\)"),
])
def test_other_models_are_refused(tmp_path, lines, kind, message):
    _trained(kind, lines[:100]).save(str(tmp_path / "tokenizer.json"))
    for load in (BertTokenizer.from_pretrained, AutoTokenizer.from_pretrained):
        with pytest.raises(UnsupportedTokenizer, match=f"tokenizer.json {message}"):
            load(tmp_path)


def _template(pair_b: int) -> dict:
    return json.loads(tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair=f"[CLS] $A [SEP] $B:{pair_b} [SEP]:{pair_b}",
        special_tokens=[("[CLS]", 101), ("[SEP]", 102)]).__getstate__())


def _added(**entry) -> list[dict]:
    return [{"id": 0, "content": "[PAD]", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True, **entry}]


REFUSED = {  # name: (change to MiniLM's tokenizer.json, message, a text the tokenizers library splits differently)
    "no-normalizer": ({"normalizer": None}, r"has no BERT normalizer \(found: none\)", "Hello"),
    "nfkc-lowercase": ({"normalizer": _normalizers({"type": "NFKC"}, {"type": "Lowercase"})},
                       r"has no BERT normalizer \(found: NFKC, Lowercase\)", "ﬁnance 中文"),
    "nfd-strip-accents": ({"normalizer": _normalizers(BERT_CASED_KEEP_ACCENTS, {"type": "NFD"},
                                                      {"type": "StripAccents"}, {"type": "Lowercase"})},
                          r"normalizer step 'NFD'", "हिन्दी"),  # StripAccents drops spacing marks (Mc) too
    "bert-then-replace": ({"normalizer": _normalizers(BERT_CASED_KEEP_ACCENTS, {
        "type": "Replace", "pattern": {"String": "-"}, "content": " "})}, r"normalizer step 'Replace'", "a-b"),
    "no-clean-text": ({"normalizer": {**BERT_CASED_KEEP_ACCENTS, "clean_text": False, "lowercase": True}},
                      r"turns BERT's clean_text off", "ab\x00cd"),
    "whitespace-regex": ({"pre_tokenizer": {"type": "Whitespace"}}, r"pre-tokenizes with 'Whitespace'", "a€b"),
    "no-pre-tokenizer": ({"pre_tokenizer": None}, r"has no pre-tokenizer", "hello world"),
    "punctuation-removed": ({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Removed"}]}},
        r"pre-tokenizer bertkit's BertTokenizer cannot reproduce \(WhitespaceSplit → Punctuation\)", "a, b"),
    "no-post-processor": ({"post_processor": None}, r"has no post-processor", "hello"),
    "roberta-processing": ({"post_processor": {"type": "RobertaProcessing", "sep": ["[SEP]", 102],
                                               "cls": ["[CLS]", 101], "trim_offsets": True, "add_prefix_space": False}},
                           r"post-processor bertkit's BertTokenizer cannot reproduce \(RobertaProcessing\)", None),
    "pair-in-segment-0": ({"post_processor": _template(0)}, r"post-processor template other than BERT's", None),
    "at-at-prefix": ({"model": {"continuing_subword_prefix": "@@"}}, r"marks word continuations with '@@'",
                     "unaffable"),
    "non-special-added": ({"added_tokens": _added(special=False, normalized=True)},
                          r"adds the non-special token '\[PAD\]'", "[pad]"),
    "lstrip-special": ({"added_tokens": _added(lstrip=True)}, r"matches the special token '\[PAD\]' with lstrip",
                       None),
    "extra-special": ({"added_tokens": _added(id=1, content="[unused0]")},
                      r"has special tokens \['\[unused0\]'\] beyond BERT's five", "[unused0]"),
    "added-beyond-vocab": ({"added_tokens": _added(id=30522, content="<new>")},
                           r"adds the token '<new>' with id 30522, but the WordPiece vocabulary lacks it", None),
    "left-padding": ({"padding": {"strategy": "BatchLongest", "direction": "Left", "pad_id": 0, "pad_type_id": 0,
                                  "pad_token": "[PAD]", "pad_to_multiple_of": None}}, r"pads on the left", None),
    "left-truncation": ({"truncation": {"direction": "Left", "max_length": 8, "strategy": "LongestFirst",
                                        "stride": 0}}, r"truncates on the left", None),
}


@pytest.fixture(scope="module")
def minilm_rust(minilm_document) -> tokenizers.Tokenizer:
    return _rust(minilm_document)


@pytest.mark.parametrize("name", REFUSED)
def test_unreproducible_pipelines_are_refused(minilm_document, minilm_rust, tmp_path, name):
    change, message, probe = REFUSED[name]
    document = _variant(minilm_document, change)
    folder = json_only_folder(tmp_path, document)
    with pytest.raises(UnsupportedTokenizer, match=f"{tmp_path}/tokenizer.json .*{message}"):
        BertTokenizer.from_pretrained(folder)
    if probe is not None:  # the refusal is deserved: the tokenizers library splits this text otherwise
        assert _rust(document).encode(probe).tokens != minilm_rust.encode(probe).tokens


@pytest.mark.parametrize("key", ["padding_side", "truncation_side"])
def test_left_side_in_config_is_refused(saved, tmp_path, key):
    """transformers 5 keeps the sides in tokenizer_config.json, not in tokenizer.json."""
    folder = shutil.copytree(saved("uncased"), tmp_path / "folder")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, key: "left"}))
    with pytest.raises(UnsupportedTokenizer, match=f"tokenizer_config.json sets {key}='left'; bertkit's "
                                                   "BertTokenizer pads and truncates on the right only"):
        BertTokenizer.from_pretrained(folder)


def test_refused_beside_vocab_txt_too(minilm_dir, minilm_document, tmp_path):
    """A vocab.txt does not make a tokenizer.json that tokenizes differently go away: transformers would read it."""
    folder = _both_files(minilm_dir, tmp_path, _variant(minilm_document, {"pre_tokenizer": {"type": "Whitespace"}}))
    with pytest.raises(UnsupportedTokenizer, match="pre-tokenizes with 'Whitespace'"):
        BertTokenizer.from_pretrained(folder)


def test_bad_tokenizer_json_is_named(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"tokenizer.json is not valid JSON"):
        BertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"is not a tokenizers tokenizer.json \(no \"model\" entry\)"):
        BertTokenizer.from_pretrained(tmp_path)


def test_malformed_parts_are_named(minilm_document, tmp_path):
    for i, change in enumerate([{"post_processor": {"type": "BertProcessing", "cls": "[CLS]", "sep": ["[SEP]", 102]}},
                                {"post_processor": {"type": "TemplateProcessing", "single": [{}]}},
                                {"normalizer": ["BertNormalizer"]}, {"added_tokens": [None]}]):
        with pytest.raises(ValueError, match=r"tokenizer.json is a malformed tokenizer.json \((BertProcessing|Key|"
                                             r"Type|Attribute|StopIteration)"):
            BertTokenizer.from_pretrained(json_only_folder(tmp_path / str(i), _variant(minilm_document, change)))


# -- known differences from the Rust tokenizer (shared with vocab.txt folders) --------------------------------


def test_known_differences_from_rust(saved, minilm_document, tmp_path):
    """bertkit follows Python's str.lower (a final Σ becomes ς) and composes accents (NFC) before lower-casing, as
    transformers' pure-Python tokenizer does; the Rust library lower-cases letter by letter and never composes."""
    uncased = BertTokenizer.from_pretrained(saved("uncased"))
    rust = transformers.AutoTokenizer.from_pretrained(saved("uncased"))
    assert uncased.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##ς" and rust.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##σ"
    # MiniLM's uncased vocabulary has no accented letter, so give "é" the id of [unused5] to see composition.
    document = _variant(minilm_document, {"normalizer": BERT_CASED_KEEP_ACCENTS})
    document["model"]["vocab"]["é"] = document["model"]["vocab"].pop("[unused5]")
    cased = BertTokenizer.from_pretrained(json_only_folder(tmp_path, document))
    rust = _rust(document)
    assert cased.tokenize("é") == rust.encode("é", add_special_tokens=False).tokens == ["é"]
    assert cased.tokenize("e\u0301") == ["é"] and rust.encode("e\u0301", add_special_tokens=False).tokens == ["[UNK]"]


def test_known_difference_odd_budget_longest_first(saved):
    """Cutting a pair to an odd budget, bertkit leaves the extra token to A (google-research/bert, transformers'
    pure-Python tokenizer); the Rust library leaves it to the longer text, B on a tie."""
    a, b = "one two three four five", "six seven eight nine ten"
    ours = BertTokenizer.from_pretrained(saved("uncased"))
    rust = transformers.AutoTokenizer.from_pretrained(saved("uncased"))
    legacy = transformers.BertTokenizerLegacy(vocab_file=str(_vocab_txt(ours, saved("uncased"))))
    assert ours.encode(a, b, truncation=True, max_length=10) == legacy.encode(a, b, truncation=True, max_length=10)
    assert ours.decode(ours.encode(a, b, truncation=True, max_length=10)) == "[CLS] one two three four [SEP] six " \
        "seven eight [SEP]"
    assert rust.decode(rust.encode(a, b, truncation=True, max_length=10)) == "[CLS] one two three [SEP] six seven " \
        "eight nine [SEP]"
    assert ours.encode(a, b, truncation=True, max_length=11) == rust.encode(a, b, truncation=True, max_length=11)


def _vocab_txt(tokenizer: BertTokenizer, folder):
    """Write the tokenizer's vocabulary as a vocab.txt beside the folder (for the pure-Python reference)."""
    path = folder.parent / f"{folder.name}-vocab.txt"
    path.write_text("".join(f"{token}\n" for token in sorted(tokenizer.vocab, key=tokenizer.vocab.get)))
    return path


# -- AutoTokenizer --------------------------------------------------------------------------------------------


def test_auto_tokenizer_equals_bert_tokenizer(minilm_dir, saved, lines):
    assert TopLevelAutoTokenizer is AutoTokenizer
    for folder in (minilm_dir, saved("cased")):
        auto, direct = AutoTokenizer.from_pretrained(folder), BertTokenizer.from_pretrained(folder)
        assert type(auto) is BertTokenizer and auto.vocab == direct.vocab and repr(auto) == repr(direct)
        assert [auto.encode(line) for line in lines] == [direct.encode(line) for line in lines]
    assert AutoTokenizer.from_pretrained(minilm_dir, do_lower_case=False).tokenize("Hello") == ["[UNK]"]


def _folder_with(tmp_path, minilm_dir, config: dict | None = None, tokenizer_config: dict | None = None):
    shutil.copy(minilm_dir / "vocab.txt", tmp_path / "vocab.txt")
    if config is not None:
        (tmp_path / "config.json").write_text(json.dumps(config))
    if tokenizer_config is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return tmp_path


@pytest.mark.parametrize("model_type", ["bert", "roberta", "albert", "electra", "distilbert"])
def test_auto_tokenizer_follows_the_files_not_the_architecture(tmp_path, minilm_dir, model_type):
    """bertkit trains RoBERTa- and ALBERT-shaped models on a WordPiece vocabulary: vocab.txt means WordPiece."""
    folder = _folder_with(tmp_path, minilm_dir, {"model_type": model_type})
    assert AutoTokenizer.from_pretrained(folder).encode("unaffable") == [101, 14477, 20961, 3468, 102]


def test_auto_tokenizer_jieba_config(tmp_path, minilm_dir):
    folder = _folder_with(tmp_path, minilm_dir, tokenizer_config={"tokenizer_class": "BertTokenizer",
                                                                  "pre_tokenizer": "jieba"})
    assert type(AutoTokenizer.from_pretrained(folder)) is JiebaBertTokenizer


@pytest.mark.parametrize("name, message", [
    ("RobertaTokenizerFast", r"names tokenizer_class 'RobertaTokenizer', a byte-level BPE tokenizer"),
    ("XLMRobertaTokenizer", r"names tokenizer_class 'XLMRobertaTokenizer', a SentencePiece tokenizer"),
    ("MPNetTokenizer", r"names tokenizer_class 'MPNetTokenizer', which bertkit does not reproduce"),
    ("BertJapaneseTokenizer", r"names tokenizer_class 'BertJapaneseTokenizer', which bertkit does not reproduce"),
])
def test_auto_tokenizer_refuses_other_tokenizer_classes(tmp_path, minilm_dir, name, message):
    folder = _folder_with(tmp_path, minilm_dir, tokenizer_config={"tokenizer_class": name})
    with pytest.raises(UnsupportedTokenizer, match=message):
        AutoTokenizer.from_pretrained(folder)


def test_auto_tokenizer_refuses_bpe_and_sentencepiece_files(tmp_path, lines):
    bpe = tmp_path / "roberta"
    bpe.mkdir()
    _trained("byte-level-bpe", lines[:100]).save_model(str(bpe))  # vocab.json + merges.txt, as GPT-2 ships
    (bpe / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    with pytest.raises(UnsupportedTokenizer, match=r"holds a byte-level BPE tokenizer \(vocab.json \+ merges.txt, "
                                                   r"GPT-2 / RoBERTa\) \(config.json: model_type 'roberta'\); "
                                                   r"bertkit reads WordPiece only — byte-level BPE comes with"):
        AutoTokenizer.from_pretrained(bpe)
    with pytest.raises(FileNotFoundError, match="has no vocab.txt and no tokenizer.json"):
        BertTokenizer.from_pretrained(bpe)
    sentencepiece = tmp_path / "albert"
    sentencepiece.mkdir()
    (sentencepiece / "spiece.model").write_bytes(b"\x0a\x00")  # recognised by its name; bertkit never parses it
    (sentencepiece / "config.json").write_text(json.dumps({"model_type": "albert"}))
    with pytest.raises(UnsupportedTokenizer, match=r"holds a SentencePiece model \(spiece.model\) \(config.json: "
                                                   r"model_type 'albert'\); bertkit reads WordPiece only"):
        AutoTokenizer.from_pretrained(sentencepiece)


def test_auto_tokenizer_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        AutoTokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"is empty: bertkit looks for vocab.txt or tokenizer.json"):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(FileNotFoundError, match=r"holds no tokenizer files \(config.json: model_type 'bert'\)"):
        AutoTokenizer.from_pretrained(tmp_path)
    with pytest.raises(NotADirectoryError, match="is a file"):
        AutoTokenizer.from_pretrained(tmp_path / "config.json")
    with pytest.raises(TypeError, match="use AutoTokenizer.from_pretrained"):
        AutoTokenizer()


def test_tokenization_with_tokenizer_json_does_not_import_torch(saved):
    code = ("import sys; from bertkit import AutoTokenizer; "
            f"AutoTokenizer.from_pretrained({str(saved('uncased'))!r}).encode('hello'); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
