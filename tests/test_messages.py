"""Error messages say what is wrong where a person looks for it: the file, the line an editor shows, the folder."""

import pytest

from bertkit.cli import main
from bertkit.finetuning.data import load_examples
from bertkit.pretraining.documents import read_documents


def test_an_empty_text_file_is_named(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["encode", "--file", str(empty)]) == 2
    assert f"{empty} holds no text" in capsys.readouterr().err
    assert main(["whiten", str(empty), "-o", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert f"{empty} holds no text" in err and "texts is empty" not in err


def test_a_missing_model_folder_is_named_as_missing(tmp_path, capsys):
    assert main(["fill-mask", "a [MASK] here", "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert f"no such model folder: {tmp_path / 'nope'}" in err and "holds no weights" not in err


def test_a_csv_row_with_an_extra_field_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"a, quoted text",pos\n"two\nlines",neg\nan unquoted, comma,pos\n')
    with pytest.raises(ValueError, match=r"d.csv line 5 has 3 fields, the header 2: quote a text that holds a comma"):
        load_examples(path, "classification")


def test_messages_name_the_line_an_editor_shows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"text {i},pos\n" for i in range(5)) + "sixth,\n")
    with pytest.raises(ValueError, match=r"d.csv line 7: the label is missing"):
        load_examples(path, "classification")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "a", "label": 1}\n\n{"text": "b"}\n')
    with pytest.raises(ValueError, match=r"d.jsonl line 3: the label is missing"):
        load_examples(jsonl, "classification")


def test_a_non_utf8_corpus_names_the_line(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(b"one line\nanother line\n" + "caf\xe9 latin-1\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"corpus.txt is not UTF-8: byte 0xe9 at offset 25, line 3"):
        read_documents([corpus])


@pytest.mark.parametrize("columns,message", [
    ("{txt: sentence}", r"columns: unknown role 'txt' \(columns read as \{'txt': 'sentence'\}\); the roles of "
                        r"classification are text, label, text_pair; did you mean 'text'\?"),
    ("{text:sentence}", r"columns: 'text:sentence' is one key without a value \(columns read as "
                        r"\{'text:sentence': None\}\): YAML needs a space after the colon, \{text: sentence\}"),
    ("{text: }", r"the role 'text' needs a column name, got None"),
])
def test_columns_roles_are_checked_showing_what_was_read(tmp_path, columns, message):
    from bertkit.finetuning.config import FinetuneConfig

    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"columns: {columns}\n")
    with pytest.raises(ValueError, match=message):
        FinetuneConfig.from_yaml(config_file)
    with pytest.raises(ValueError, match=message):
        FinetuneConfig.from_yaml(None, [f"columns={columns}"])
    assert FinetuneConfig.from_dict({"columns": {"text": "sentence", "label": 2024}}).columns == {
        "text": "sentence", "label": "2024"}


def test_examples_from_rows_checks_the_roles_too(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sentence,label\na,pos\n")
    with pytest.raises(ValueError, match="unknown role 'txt'"):
        load_examples(path, "classification", {"txt": "sentence"})
    assert load_examples(path, "classification", {"text": "sentence"})[0]["text"] == "a"
