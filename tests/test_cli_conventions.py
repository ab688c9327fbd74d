"""Command-line conventions: rows stay aligned with input lines, outputs say what they write, pipes close
quietly, commands import only their layer, fill-mask checks everything before answering."""

import subprocess
import sys

from bertkit.cli import main


def test_blank_lines_are_named_not_dropped(tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("first text\n\nthird text\n")
    assert main(["encode", "--file", str(texts)]) == 2
    assert "texts.txt line 2 is blank (1 blank line(s))" in capsys.readouterr().err
    assert main(["encode", "a text", "-o", str(tmp_path / "vectors.txt")]) == 2
    assert "write .npy (the vectors) or .jsonl" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly(minilm_dir):
    command = (f"{sys.executable} -m bertkit encode one two three four --model {minilm_dir} | head -c 10 "
               "> /dev/null")
    done = subprocess.run(["bash", "-c", f"set -o pipefail; {command}"], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_torch_free_commands_do_not_import_torch(tmp_path, minilm_dir):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a small corpus of words\nand some more words\n" * 20)
    script = ("import sys; from bertkit.cli import main; "
              f"main(['tokenize', 'hello world', '--model', {str(minilm_dir)!r}]); "
              f"main(['train-tokenizer', {str(corpus)!r}, '--vocab-size', '120', '-o', {str(tmp_path / 'v')!r}]); "
              "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_fill_mask_says_what_is_wrong_before_loading_anything(tmp_path, capsys):
    assert main(["fill-mask", "the [MASK] is here"]) == 2
    err = capsys.readouterr().err
    assert "has no masked-LM head (the installed MiniLM is a sentence-embedding model" in err
    assert "make pretrain-en" in err and "freshly initialised" not in err


def test_params_states_its_defaults(capsys):
    assert main(["params"]) == 0
    assert "the bert 'base' preset (defaults --arch bert --preset base" in capsys.readouterr().err


def test_fill_mask_checks_every_text_before_printing(tmp_path, minilm_dir, capsys):
    from bertkit import BertConfig, BertForMaskedLM, BertTokenizer

    model = BertForMaskedLM(BertConfig.preset("tiny", vocab_size=30522))
    model.save_pretrained(tmp_path / "mlm", tokenizer=BertTokenizer.from_pretrained(minilm_dir))
    assert main(["fill-mask", "--model", str(tmp_path / "mlm"), "a [MASK] text", "no mask here"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "text 2 ('no mask here') has no [MASK] to fill" in captured.err
