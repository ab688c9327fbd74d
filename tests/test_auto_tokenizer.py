"""AutoTokenizer.from_pretrained(folder): the tokenizer files decide; other kinds are refused by name."""

import json
import shutil
import subprocess
import sys

import pytest
from tokenizer_json_fixtures import folder_maker, trained, varied_lines

from bertkit import AutoTokenizer as TopLevelAutoTokenizer
from bertkit.tokenization import AutoTokenizer, BertTokenizer, RobertaTokenizer, UnsupportedTokenizer
from bertkit.tokenization.chinese import JiebaBertTokenizer


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return varied_lines(300)


@pytest.fixture(scope="module")
def saved(minilm_dir, tmp_path_factory):
    return folder_maker(minilm_dir, tmp_path_factory)


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
    ("RobertaTokenizerFast", r"names tokenizer_class 'RobertaTokenizer', a byte-level BPE tokenizer \(GPT-2 / "
                             r"RoBERTa\), but the folder holds a WordPiece vocabulary"),
    ("XLMRobertaTokenizer", r"names tokenizer_class 'XLMRobertaTokenizer', a SentencePiece tokenizer"),
    ("MPNetTokenizer", r"names tokenizer_class 'MPNetTokenizer', which bertkit does not reproduce"),
    ("BertJapaneseTokenizer", r"names tokenizer_class 'BertJapaneseTokenizer', which bertkit does not reproduce"),
])
def test_auto_tokenizer_refuses_other_tokenizer_classes(tmp_path, minilm_dir, name, message):
    folder = _folder_with(tmp_path, minilm_dir, tokenizer_config={"tokenizer_class": name})
    with pytest.raises(UnsupportedTokenizer, match=message):
        AutoTokenizer.from_pretrained(folder)


def test_auto_tokenizer_loads_byte_level_bpe_and_refuses_sentencepiece_files(tmp_path, lines):
    bpe = tmp_path / "roberta"
    bpe.mkdir()
    trained("byte-level-bpe", lines[:100]).save_model(str(bpe))  # vocab.json + merges.txt, as GPT-2 ships
    (bpe / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert type(AutoTokenizer.from_pretrained(bpe)) is RobertaTokenizer  # more in tests/test_byte_bpe.py
    with pytest.raises(FileNotFoundError, match="has no vocab.txt and no tokenizer.json"):
        BertTokenizer.from_pretrained(bpe)
    sentencepiece = tmp_path / "albert"
    sentencepiece.mkdir()
    (sentencepiece / "spiece.model").write_bytes(b"\x0a\x00")  # read as ALBERT's, and found to be no model
    (sentencepiece / "config.json").write_text(json.dumps({"model_type": "albert"}))
    with pytest.raises(ValueError, match=r"spiece.model: pieces: 0 pieces of type UNKNOWN"):
        AutoTokenizer.from_pretrained(sentencepiece)  # real SentencePiece folders: tests/test_sentencepiece_families.py


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
