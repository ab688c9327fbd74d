"""Atomic writes: a failed write leaves the old file whole and no temp file behind."""

import os

import pytest
import torch

from bertkit import BertConfig, BertModel
from bertkit.atomic import write_atomic, write_bytes_atomic, write_text_atomic


def test_failed_write_keeps_the_old_file(tmp_path):
    target = write_text_atomic(tmp_path / "vocab.txt", "old\n")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, half_then_crash)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.txt"]


def test_interrupted_checkpoint_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = BertModel(BertConfig.preset("tiny", vocab_size=50)).eval()
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bertkit.checkpoint.save_file", crash)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask_as_open_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        with open(tmp_path / "by-open", "w") as f:  # the oracle: what a plain open() gives under this umask
            f.write("x")
        expected = (tmp_path / "by-open").stat().st_mode & 0o777
        write_bytes_atomic(tmp_path / "vectors.npy", b"\x93NUMPY")
        BertModel(BertConfig.preset("tiny", vocab_size=50)).save_pretrained(tmp_path / "model")
    finally:
        os.umask(old)
    assert expected == 0o666 & ~umask
    written = [tmp_path / "vectors.npy", tmp_path / "model" / "model.safetensors", tmp_path / "model" / "config.json"]
    for path in written:
        assert path.stat().st_mode & 0o777 == expected, path.name
