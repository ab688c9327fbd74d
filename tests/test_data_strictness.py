"""Data files are read strictly and explained: missing labels, mixed label spellings, NaN scores, Excel's BOM,
other encodings, and a summary line of what a run trains on."""

import json

import pytest

from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import load_examples
from bertkit.finetuning.train import data_summary, load_splits


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_a_csv_row_without_its_label_is_an_error_naming_the_row(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\ngood film,pos\nno label here\n")
    with pytest.raises(ValueError, match=r"d.csv line 3: the label is missing"):
        load_examples(path, "classification")


def test_one_label_rule_for_numbers_strings_and_booleans(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 1.0}, {"text": "c", "label": "1"},
            {"text": "d", "label": "1.0"}, {"text": "e", "label": 0}, {"text": "g", "label": 2.5}]
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert [e["label"] for e in load_examples(path, "classification")] == ["1", "1", "1", "1", "0", "2.5"]
    booleans = write(tmp_path / "b.jsonl", '{"text": "a", "label": true}\n{"text": "b", "label": false}\n')
    assert [e["label"] for e in load_examples(booleans, "classification")] == ["true", "false"]


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
def test_non_finite_scores_are_refused(tmp_path, score):
    path = write(tmp_path / "d.csv", f"text,text_pair,score\na,b,0.5\nc,d,{score}\n")
    with pytest.raises(ValueError, match=r"line 3: score is .*; scores must be finite"):
        load_examples(path, "regression")


def test_excel_bom_is_read_and_other_encodings_are_named(tmp_path):
    path = write(tmp_path / "excel.csv", "\ufefftext,label\nbon film,pos\n")
    assert load_examples(path, "classification") == [{"text": "bon film", "label": "pos"}]
    path = write(tmp_path / "latin.csv", "text,label\ncafé crème,pos\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin.csv is not UTF-8: byte 0xe9 at offset 14"):
        load_examples(path, "classification")


def test_a_run_says_what_it_trains_on(tmp_path):
    rows = [{"text": f"text {i}", "label": "pos" if i % 4 else "neg"} for i in range(40)]
    path = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    config = FinetuneConfig(train_file=str(path))
    line = data_summary(config, load_splits(config))
    assert line.startswith(f"data ({path}): train 36, dev 4 (10 % carved from train (seed 0)), test 0")
    assert "train labels: pos 7" in line and "neg 2" in line


def test_vocabulary_training_refuses_other_encodings_instead_of_dropping_bytes(tmp_path, capsys):
    from bertkit.cli import main

    corpus = write(tmp_path / "corpus.txt", "plain line\nun café crème\n", encoding="latin-1")
    assert main(["train-tokenizer", str(corpus), "--vocab-size", "200", "-o", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "corpus.txt is not UTF-8: byte 0xe9 at offset 17, line 2" in err and not (tmp_path / "v").exists()


def test_predict_reads_the_columns_the_model_was_trained_with(tmp_path, capsys):
    import csv

    from finetuning_fixtures import save_tiny_model, sentiment_examples

    from bertkit.cli import main

    folder = save_tiny_model(tmp_path / "tiny")
    path = tmp_path / "sim.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        writer.writerows((e["text"], e["label"]) for e in sentiment_examples(40, 0))
    assert main(["finetune", f"model={folder}", f"train_file={path}", "columns={text: review, label: sentiment}",
                 f"output_dir={tmp_path / 'out'}", "epochs=1", "max_length=24", "progress=false", "threads=1"]) == 0
    # pooling: auto on a plain encoder folder (a pooler no pair head trained): the mean, said and saved
    assert "pooling: mean (the mean of the tokens: the folder's pooler has no sentence-pair head" in \
        capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "best" / "config.json").read_text())["pooling"] == "mean"
    assert main(["predict", "--model", str(tmp_path / "out" / "best"), str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 40 and all(json.loads(line)["label"] in ("pos", "neg") for line in lines)
    assert main(["predict", "--model", str(tmp_path / "out" / "best"), str(path), "--columns", "text"]) == 2
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "out" / "best"), str(path), "--columns", "txt=review"]) == 2
    assert "unknown role 'txt'" in capsys.readouterr().err


def test_labels_mixing_booleans_and_numbers_are_refused(tmp_path):
    rows = [{"text": "a", "label": True}, {"text": "b", "label": 1}]
    path = write(tmp_path / "d.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="mixes boolean and numeric labels"):
        load_examples(path, "classification")
