"""The `bertkit` command line, run in-process and as a real subprocess."""

import json
import subprocess
import sys

import numpy as np

from bertkit import SentenceEncoder
from bertkit.cli import main


def test_tokenize_prints_tokens_over_ids(capsys):
    assert main(["tokenize", "unaffable"]) == 0
    top, bottom = capsys.readouterr().out.splitlines()
    assert top.split() == ["[CLS]", "una", "##ffa", "##ble", "[SEP]"]
    assert bottom.split() == ["101", "14477", "20961", "3468", "102"]


def test_encode_writes_npy_and_jsonl(tmp_path, minilm_dir):
    texts = tmp_path / "texts.txt"
    texts.write_text("First do it\nthen do it right\n")
    expected = SentenceEncoder.from_pretrained(minilm_dir).encode(["First do it", "then do it right"], normalize=True)
    assert main(["encode", "--file", str(texts), "--normalize", "-o", str(tmp_path / "out.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
    assert main(["encode", "extra text", "--pooling", "cls", "--layer=-2,-1", "-o", str(tmp_path / "o.jsonl")]) == 0
    row = json.loads((tmp_path / "o.jsonl").read_text())
    assert row["text"] == "extra text" and len(row["embedding"]) == 768
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bad_input_ends_with_one_clear_line(tmp_path, capsys):
    assert main(["encode", "x", "--model", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"no such model folder: {tmp_path / 'missing'} "
                                                    "(bertkit loads local folders, not hub names)")
    assert main(["encode", "--file", str(tmp_path / "none.txt")]) == 2
    assert "no such input file" in capsys.readouterr().err
    assert main(["encode"]) == 2
    assert "nothing to encode" in capsys.readouterr().err


def test_demo_runs_as_a_command():
    result = subprocess.run([sys.executable, "-m", "bertkit", "demo", "--quick"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[CLS] token ##izer ##s" in out and "5632 4197 6427 6241 1905 4415" in out
    assert "then do it right    0.624   1.000   0.770" in out
    assert "109,482,240" in out and "335,141,888" in out
    assert "fill-mask before training" in out and "fill-mask after training" in out and "loss curve:" in out
    assert "held-out MLM accuracy" in out
