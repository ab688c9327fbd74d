"""The command line's flags: both spellings, documented defaults, --version, errors with the command's own usage."""

import dataclasses
from pathlib import Path

import pytest

from bertkit import __version__
from bertkit.cli import build_parser, main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.pretraining import PretrainingConfig


def command_parser(command: str):
    parser = build_parser(command)
    return parser._subparsers._group_actions[0].choices[command]


@pytest.mark.parametrize("argv,dest,value", [
    (["pretrain", "--learning_rate", "3e-4"], "learning_rate", "3e-4"),
    (["pretrain", "--learning-rate=3e-4"], "learning_rate", "3e-4"),
    (["finetune", "--max_steps=7", "--lr", "1e-4"], "max_steps", "7"),
    (["encode", "x", "--batch_size", "4"], "batch_size", 4),
    (["serve", "--max-seq-len", "40"], "max_seq_len", "40"),
    (["serve", "--max_seq_len", "40"], "max_seq_len", "40"),
    (["tokenize", "x", "--no_special_tokens"], "no_special_tokens", True),
])
def test_flags_take_dashes_or_underscores(argv, dest, value):
    args = build_parser(argv[0]).parse_args(argv)
    assert getattr(args, dest) == value


def test_a_text_after_double_dash_is_kept_as_written():
    args = build_parser("tokenize").parse_args(["tokenize", "--", "--no_special_tokens"])
    assert args.texts == ["--no_special_tokens"] and not args.no_special_tokens


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"bertkit {__version__}"


@pytest.mark.parametrize("command,config_class", [("pretrain", PretrainingConfig), ("finetune", FinetuneConfig)])
def test_every_option_has_a_doc_and_its_default(command, config_class):
    actions = {a.dest: a for a in command_parser(command)._actions}
    for field in dataclasses.fields(config_class):
        text = actions[field.name].help or ""
        assert "(default: " in text and not text.startswith("(default"), f"--{field.name}: {text!r}"
    assert "(default: lines)" in actions["corpus_format"].help if command == "pretrain" else True
    helped = command_parser(command).format_help()
    assert "peak learning rate" in helped and "(default: " in helped


def test_the_top_level_help_has_no_rst_quotes():
    assert "``" not in build_parser().format_help()
    assert "bertkit COMMAND --help" in build_parser().format_help()


def test_a_typo_shows_the_commands_own_usage_and_the_nearest_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["tokenize", "hi", "--typo"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "usage: bertkit tokenize" in err and "unrecognized arguments: --typo" in err
    with pytest.raises(SystemExit):
        main(["pretrain", "--learnin-rate", "1"])
    err = capsys.readouterr().err
    assert "usage: bertkit pretrain" in err and "did you mean --learning-rate?" in err


def test_the_readme_documents_raw_corpora():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "`corpus_format: raw`, hard-wrapped running text" in readme
