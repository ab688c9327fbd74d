"""Folders with a tokenizer.json and no vocab.txt (as current transformers and sentence-transformers save them),
against transformers / tokenizers as the oracle; the tokenizer.json pipelines bertkit refuses, each shown to
tokenize differently from BERT's; the known differences from the Rust tokenizer."""

import json
import logging
import shutil

import pytest
import tokenizers
import transformers
from tokenizer_json_fixtures import (
    OPTIONS,
    folder_maker,
    json_only_folder,
    minilm_tokenizer_json,
    trained,
    variant,
    varied_lines,
)

from bertkit.serving.settings import ServerSettings
from bertkit.tokenization import AutoTokenizer, BertTokenizer, UnsupportedTokenizer


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return varied_lines(300)


@pytest.fixture(scope="module")
def saved(minilm_dir, tmp_path_factory):
    return folder_maker(minilm_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def minilm_document(minilm_dir) -> dict:
    return minilm_tokenizer_json(minilm_dir)


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
    for kwargs in [  # even and odd budgets for pairs (max_length - 3): the folder's tokenizer.json rule
        {"padding": True},
        {"padding": "max_length", "max_length": 81, "truncation": True},
        {"padding": True, "truncation": True, "max_length": 17},
        {"padding": "longest", "truncation": "longest_first", "max_length": 9},
        {"padding": True, "truncation": True, "max_length": 18},
        {"padding": "longest", "truncation": "longest_first", "max_length": 10},
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


@pytest.mark.parametrize("name", EQUIVALENTS)
def test_equivalent_pipelines_match_rust(minilm_document, tmp_path, lines, name):
    document = variant(minilm_document, EQUIVALENTS[name])
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
    cased = variant(minilm_document, {"normalizer": BERT_CASED_KEEP_ACCENTS})
    with pytest.raises(ValueError, match=r"vocab.txt with tokenizer_config.json means do_lower_case=True, but "
                                         r"tokenizer.json says False; fix the folder"):
        BertTokenizer.from_pretrained(_both_files(minilm_dir, tmp_path / "a", cased))
    # The same file agrees once the config states what vocab.txt alone cannot.
    agreed = _both_files(minilm_dir, tmp_path / "b", cased, {"do_lower_case": False, "strip_accents": False})
    assert BertTokenizer.from_pretrained(agreed).tokenize("Héllo") == ["[UNK]"]
    renamed = variant(minilm_document, {})
    renamed["model"]["vocab"]["hello!"] = renamed["model"]["vocab"].pop("hello")
    with pytest.raises(ValueError, match=r"hold different vocabularies \(first difference: \('hello.*7592\)"):
        BertTokenizer.from_pretrained(_both_files(minilm_dir, tmp_path / "c", renamed))


# -- refusals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, message", [
    ("byte-level-bpe", r"uses a byte-level BPE model \(GPT-2 / RoBERTa\); BertTokenizer reads WordPiece only — "
                       r"load it with AutoTokenizer"),
    ("char-bpe", r"uses a BPE model \(character-level merges, not WordPiece\); bertkit reads WordPiece only"),
    ("sentencepiece-bpe", r"uses a SentencePiece-style BPE model"),
    ("unigram", r"uses a Unigram model \(SentencePiece: ALBERT / T5 / XLNet / XLM-RoBERTa\)"),
    ("wordlevel", r"uses a WordLevel model \(whole words, no subword pieces\)"),
])
def test_other_models_are_refused(tmp_path, lines, kind, message):
    trained(kind, lines[:100]).save(str(tmp_path / "tokenizer.json"))
    loaders = [BertTokenizer.from_pretrained]
    if kind != "byte-level-bpe":  # AutoTokenizer loads that one (tests/test_byte_bpe.py)
        loaders.append(AutoTokenizer.from_pretrained)
    for load in loaders:
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
    document = variant(minilm_document, change)
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
    folder = _both_files(minilm_dir, tmp_path, variant(minilm_document, {"pre_tokenizer": {"type": "Whitespace"}}))
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
            BertTokenizer.from_pretrained(json_only_folder(tmp_path / str(i), variant(minilm_document, change)))


# -- known differences from the Rust tokenizer (shared with vocab.txt folders) --------------------------------


def test_known_differences_from_rust(saved, minilm_document, tmp_path):
    """bertkit follows Python's str.lower (a final Σ becomes ς) and composes accents (NFC) before lower-casing, as
    transformers' pure-Python tokenizer does; the Rust library lower-cases letter by letter and never composes."""
    uncased = BertTokenizer.from_pretrained(saved("uncased"))
    rust = transformers.AutoTokenizer.from_pretrained(saved("uncased"))
    assert uncased.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##ς" and rust.tokenize("ΟΔΥΣΣΕΥΣ")[-1] == "##σ"
    # MiniLM's uncased vocabulary has no accented letter, so give "é" the id of [unused5] to see composition.
    document = variant(minilm_document, {"normalizer": BERT_CASED_KEEP_ACCENTS})
    document["model"]["vocab"]["é"] = document["model"]["vocab"].pop("[unused5]")
    cased = BertTokenizer.from_pretrained(json_only_folder(tmp_path, document))
    rust = _rust(document)
    assert cased.tokenize("é") == rust.encode("é", add_special_tokens=False).tokens == ["é"]
    assert cased.tokenize("e\u0301") == ["é"] and rust.encode("e\u0301", add_special_tokens=False).tokens == ["[UNK]"]


def test_pair_truncation_follows_the_folder_and_keeps_the_reference_rule(saved, tmp_path):
    """Cutting a pair to an odd budget, the Rust library (transformers' tokenizer) leaves the extra token to the
    longer text, B on a tie; google-research/bert and transformers' pure-Python tokenizer leave it to A. A folder
    with tokenizer.json gets the Rust rule; the reference rule stays an option; bertkit's save records the rule."""
    a, b = "one two three four five", "six seven eight nine ten"
    ours = BertTokenizer.from_pretrained(saved("uncased"))
    rust = transformers.AutoTokenizer.from_pretrained(saved("uncased"))
    assert ours.pair_truncation == "tokenizers"
    reference = BertTokenizer.from_pretrained(saved("uncased"), pair_truncation="reference")
    legacy = transformers.BertTokenizerLegacy(vocab_file=str(_vocab_txt(ours, saved("uncased"))))
    for first, second in [(a, b), (a + " eleven twelve", b), (a, b + " eleven"), ("one", b)]:
        for max_length in range(4, 14):
            kwargs = {"truncation": True, "max_length": max_length}
            assert ours.encode(first, second, **kwargs) == rust.encode(first, second, **kwargs), max_length
            assert reference.encode(first, second, **kwargs) == legacy.encode(first, second, **kwargs), max_length
    assert ours.decode(ours.encode(a, b, truncation=True, max_length=10)) == "[CLS] one two three [SEP] six seven " \
        "eight nine [SEP]"
    assert reference.decode(reference.encode(a, b, truncation=True, max_length=10)) == "[CLS] one two three four " \
        "[SEP] six seven eight [SEP]"
    vocab_only = tmp_path / "google"  # a vocab.txt folder, as google-research/bert's checkpoints
    vocab_only.mkdir()
    _vocab_txt(ours, saved("uncased")).replace(vocab_only / "vocab.txt")
    assert BertTokenizer.from_pretrained(vocab_only).pair_truncation == "reference"
    for tokenizer, rule in ((ours, "tokenizers"), (reference, "reference")):
        tokenizer.save_pretrained(tmp_path / rule)
        assert BertTokenizer.from_pretrained(tmp_path / rule).pair_truncation == rule
    with pytest.raises(ValueError, match=r"pair_truncation must be one of \('tokenizers', 'reference'\)"):
        BertTokenizer.from_pretrained(vocab_only, pair_truncation="rust")


def _vocab_txt(tokenizer: BertTokenizer, folder):
    """Write the tokenizer's vocabulary as a vocab.txt beside the folder (for the pure-Python reference)."""
    path = folder.parent / f"{folder.name}-vocab.txt"
    path.write_text("".join(f"{token}\n" for token in sorted(tokenizer.vocab, key=tokenizer.vocab.get)))
    return path
