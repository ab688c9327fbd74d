"""PEFT end to end on a tiny random BERT: every method learns the synthetic sentiment task, the run keeps an
adapter folder (peft's format) with the head, results.json records the trainable share, and predict reads it."""

import json

import pytest
import torch
from finetuning_fixtures import sentiment_examples, tiny_dir  # noqa: F401
from safetensors.torch import load_file
from test_finetuning_train import files, quick

from bertkit.cli import main
from bertkit.finetuning.config import FinetuneConfig
from bertkit.finetuning.data import LabelMap
from bertkit.finetuning.predict import load_predictor
from bertkit.finetuning.train import build_model, finetune, seed_everything
from bertkit.peft.folders import adapter_state

METHODS = ["lora", "houlsby", "pfeiffer", "prefix", "ptuning_v2", "prompt", "ptuning", "bitfit", "head"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("peft-data")
    return files(tmp, {"train": sentiment_examples(320, 0), "dev": sentiment_examples(80, 1),
                       "test": sentiment_examples(80, 2)})


def initial_model(config: FinetuneConfig) -> torch.nn.Module:
    """The model as the run started it (same seed, same construction)."""
    seed_everything(config.seed)
    return build_model(config, LabelMap(["neg", "pos"]))


@pytest.mark.parametrize("method", METHODS)
def test_a_tiny_task_learns_with_each_method(method, tmp_path, minilm_dir, data):
    config = FinetuneConfig(**data, model=str(minilm_dir), output_dir=str(tmp_path / "out"), peft=method, lora_r=4,
                            adapter_size=8, num_virtual_tokens=4, encoder_hidden_size=32, learning_rate=5e-3,
                            epochs=1, limit_train=192, limit_eval=40, max_length=16, batch_size=16, pooling="mean",
                            progress=False,
                            seed=1, threads=1)
    result = finetune(config)
    assert result.test["accuracy"] >= 0.9, (method, result.test)
    best = tmp_path / "out" / "best"
    adapter = json.loads((best / "adapter_config.json").read_text())
    assert (best / "adapter_model.safetensors").is_file() and not (best / "model.safetensors").exists()
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    shares = summary["trainable_parameters"]
    assert shares["count"] == adapter["bertkit"]["trainable_parameters"]
    assert 0 < shares["fraction"] < 0.05 and shares["fraction"] == shares["count"] / shares["total"]
    # every tensor the method trains moved from where it started, and the frozen base did not
    start = initial_model(config)
    stored, started = load_file(best / "adapter_model.safetensors"), adapter_state(start)
    assert set(stored) == set(started)
    for name, tensor in stored.items():
        assert not torch.allclose(tensor, started[name]), name
    predictor = load_predictor(best)
    frozen = {name: p for name, p in start.bert.named_parameters() if not p.requires_grad}
    tuned = dict(predictor.model.bert.named_parameters())
    assert frozen and all(torch.equal(tuned[name], p) for name, p in frozen.items())
    scored = predictor.predict(["the film was superb", "the plot was awful"])
    assert [p["label"] for p in scored] == ["pos", "neg"]


def test_cli_finetune_and_predict_with_an_adapter(tmp_path, tiny_dir, data, capsys, caplog):  # noqa: F811
    out = tmp_path / "run"
    args = [f"{k}={v}" for k, v in data.items()] + [f"model={tiny_dir}", f"output_dir={out}", "max_length=32",
                                                    "epochs=3", "learning_rate=1e-2", "progress=false", "threads=1"]
    assert main(["finetune", "peft=lora", "lora_r=8", *args]) == 0
    capsys.readouterr()
    texts = tmp_path / "texts.txt"
    texts.write_text("a lovely film\n")
    caplog.clear()
    assert main(["predict", "--model", str(out / "best"), str(texts)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["label"] in ("pos", "neg")
    assert "freshly initialised" not in caplog.text  # the head comes from the adapter, right after the base
    assert main(["merge-adapter", str(out / "best"), str(tmp_path / "merged")]) == 0
    assert "freshly initialised" not in caplog.text


def test_bad_peft_options_are_refused_by_name(tmp_path, tiny_dir):  # noqa: F811
    with pytest.raises(ValueError, match="r must be a positive integer"):
        FinetuneConfig(peft="lora", lora_r=0)
    with pytest.raises(ValueError, match="peft method must be one of"):
        FinetuneConfig(peft="qlora")
    config = quick(tmp_path, tiny_dir, train_file="x", peft="prompt", num_virtual_tokens=40, max_length=32)
    with pytest.raises(ValueError, match="virtual tokens and max_length=32 need more than the model's 64"):
        build_model(config, LabelMap(["neg", "pos"]))
