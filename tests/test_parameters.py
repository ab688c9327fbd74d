"""The parameter breakdown formula against real models: bertkit's own and transformers'."""

import pytest
import torch
import transformers

from bertkit import BertConfig, BertForPreTraining, BertModel
from bertkit.cli import main
from bertkit.model.parameters import parameter_breakdown, total_parameters


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset", ["tiny", "mini", "small", "medium", "base", "large"])
def test_formula_matches_real_models(preset):
    config = BertConfig.preset(preset)
    hf_config = transformers.BertConfig(**{k: v for k, v in config.to_dict().items() if k != "architectures"})
    with torch.device("meta"):  # shapes only: base and large without allocating their weights
        ours, ours_heads = BertModel(config), BertForPreTraining(config)
        theirs, theirs_heads = transformers.BertModel(hf_config), transformers.BertForPreTraining(hf_config)
    assert total_parameters(config) == count(ours) == count(theirs)
    assert total_parameters(config, with_heads=True) == count(ours_heads) == count(theirs_heads)


def test_paper_sizes():
    assert total_parameters(BertConfig.preset("base")) == 109_482_240
    assert total_parameters(BertConfig.preset("large")) == 335_141_888
    rows = dict(parameter_breakdown(BertConfig.preset("base")))
    assert rows["word embeddings (V×H)"] == 30522 * 768
    assert rows["encoder: one layer × 12 layers"] == 12 * 7_087_872


def test_params_command_prints_the_totals(capsys):
    assert main(["params", "--preset", "large", "--heads"]) == 0
    out = capsys.readouterr().out
    assert "335,141,888" in out and "total (BertForPreTraining)" in out
