"""Parameter counts from the module tree against transformers' models, for every architecture's presets."""

import pytest
import torch
import transformers

from bertkit import BertConfig
from bertkit.cli import main
from bertkit.model.parameters import parameter_breakdown, total_parameters

HF = {"bert": ("BertConfig", "BertModel", "BertForPreTraining"),
      "roberta": ("RobertaConfig", "RobertaModel", "RobertaForMaskedLM"),
      "albert": ("AlbertConfig", "AlbertModel", "AlbertForPreTraining"),
      "electra": ("ElectraConfig", "ElectraModel", "ElectraForPreTraining"),
      "distilbert": ("DistilBertConfig", "DistilBertModel", "DistilBertForMaskedLM")}
PRESETS = [("bert", p) for p in ("tiny", "mini", "small", "medium", "base", "large")] + [
    ("roberta", "base"), ("roberta", "large"), ("albert", "base"), ("albert", "large"), ("albert", "xlarge"),
    ("albert", "xxlarge"), ("electra", "small"), ("electra", "base"), ("electra", "large"),
    ("electra", "small-generator"), ("electra", "base-generator"), ("distilbert", "base")]


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def transformers_counts(config: BertConfig) -> tuple[int, int]:
    """transformers' own model and pretraining model for the same config.json, built on the meta device."""
    config_class, model_class, heads_class = HF[config.model_type]
    values = {k: v for k, v in config.to_dict().items() if k != "architectures"}
    hf_config = getattr(transformers, config_class)(**values)
    with torch.device("meta"):
        model, with_heads = (getattr(transformers, name)(hf_config) for name in (model_class, heads_class))
    return count(model), count(with_heads)


@pytest.mark.parametrize("arch,preset", PRESETS, ids=[f"{a}-{p}" for a, p in PRESETS])
def test_counts_equal_transformers(arch, preset):
    config = BertConfig.preset(preset, model_type=arch)
    assert (total_parameters(config), total_parameters(config, with_heads=True)) == transformers_counts(config)


def test_paper_sizes():
    assert total_parameters(BertConfig.preset("base")) == 109_482_240
    assert total_parameters(BertConfig.preset("large")) == 335_141_888
    assert total_parameters(BertConfig.preset("base", model_type="albert")) == 11_683_584  # "12M"
    rows = dict(parameter_breakdown(BertConfig.preset("base")))
    assert rows["word embeddings (V×E)"] == 30522 * 768
    assert rows["encoder: one layer × 12 layers"] == 12 * 7_087_872
    assert rows["  FFN in"] == 768 * 3072 + 3072
    albert = dict(parameter_breakdown(BertConfig.preset("base", model_type="albert")))
    assert albert["encoder: 1 unique layer(s), applied 12 times"] == 7_087_872
    assert albert["embedding projection (E→H)"] == 128 * 768 + 768


def test_params_command_prints_the_totals_and_plots(tmp_path, capsys):
    assert main(["params", "--preset", "large", "--heads"]) == 0
    out = capsys.readouterr().out
    assert "335,141,888" in out and "total (BertForPreTraining)" in out
    png = tmp_path / "albert.png"
    assert main(["params", "--arch", "albert", "--preset", "xxlarge", "--plot", str(png)]) == 0
    assert "total (AlbertModel)" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["params", "--arch", "distilbert", "--preset", "xlarge"]) == 2
    assert "unknown preset 'xlarge' for distilbert" in capsys.readouterr().err
