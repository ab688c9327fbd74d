"""Parameter-efficient methods on the blocks, every architecture: zero-initialised LoRA / adapters leave the model
as it was, merged LoRA equals unmerged, prefixes ignore the batch's padding, gradients reach only what is trained."""

import copy

import pytest
import torch
from family_fixtures import SHAPE, perturb

from bertkit.config import BertConfig
from bertkit.finetuning.models import BertForSequenceClassification, BertForTokenClassification, TaskConfig
from bertkit.peft import PeftConfig, apply_peft, merge_lora, trainable_parameters
from bertkit.peft.lora import LoraLinear

TYPES = {"bert": {}, "roberta": dict(pad_token_id=1, max_position_embeddings=42, type_vocab_size=1),
         "albert": dict(embedding_size=20, num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2),
         "electra": dict(embedding_size=20), "distilbert": dict(type_vocab_size=0)}
METHODS = ["head", "bitfit", "lora", "houlsby", "pfeiffer", "prefix", "ptuning_v2", "prompt", "ptuning"]


def task_model(model_type: str, token_level: bool = False, seed: int = 0) -> torch.nn.Module:
    """A perturbed random classifier (3 labels) of one architecture."""
    fields = {k: v for k, v in SHAPE.items()} | TYPES[model_type]
    base = BertConfig(model_type=model_type, **fields)
    shape = {k: getattr(base, k) for k in BertConfig.__dataclass_fields__}
    pooling = "mean" if model_type in ("electra", "distilbert") else "pooled"
    config = TaskConfig(**shape, id2label={0: "a", 1: "b", 2: "c"}, pooling=pooling)
    torch.manual_seed(seed)
    cls = BertForTokenClassification if token_level else BertForSequenceClassification
    return perturb(cls(config), seed).eval()


def inputs(seed: int = 0, batch: int = 3, seq: int = 11):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, 100, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def randomise(model: torch.nn.Module, seed: int = 1) -> None:
    """Give every trained parameter noise: the methods' zero starts would hide a wrong wiring."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.2)


@pytest.mark.parametrize("model_type", list(TYPES))
@pytest.mark.parametrize("method", ["lora", "houlsby", "pfeiffer"])
def test_zero_initialised_lora_and_adapters_equal_the_base_model(model_type, method):
    base = task_model(model_type)
    tuned = apply_peft(copy.deepcopy(base), PeftConfig(method=method, r=4, adapter_size=5,
                                                       target_modules=["query", "value", "intermediate.dense"]))
    x = inputs()
    with torch.no_grad():
        before, after = base(**x).logits, tuned(**x).logits
    assert (before - after).abs().max() <= 1e-6
    randomise(tuned)
    with torch.no_grad():
        assert (tuned(**x).logits - before).abs().max() > 1e-3  # the modules are on the path


@pytest.mark.parametrize("model_type", list(TYPES))
def test_merged_lora_equals_unmerged(model_type):
    tuned = apply_peft(task_model(model_type), PeftConfig(method="lora", r=4, lora_alpha=8,
                                                          target_modules=["query", "key", "value", "dense"]))
    randomise(tuned)
    x = inputs()
    with torch.no_grad():
        unmerged = tuned(**x).logits
        wrapped = [m for m in tuned.modules() if isinstance(m, LoraLinear)]
        for m in wrapped:
            m.merge()
        merged_in_place = tuned(**x).logits
        for m in wrapped:
            m.unmerge()
        again = tuned(**x).logits
        plain = merge_lora(copy.deepcopy(tuned))
        merged = plain(**x).logits
    assert not any(isinstance(m, LoraLinear) for m in plain.modules())
    assert set(plain.state_dict()) == set(task_model(model_type).state_dict())  # the base architecture again
    for out in (merged_in_place, again, merged):
        assert (out - unmerged).abs().max() <= 1e-5


@pytest.mark.parametrize("model_type", list(TYPES))
@pytest.mark.parametrize("method", ["prefix", "ptuning_v2"])
def test_prefix_with_padding_equals_the_same_prefix_unpadded(model_type, method):
    model = apply_peft(task_model(model_type), PeftConfig(method=method, num_virtual_tokens=4,
                                                          encoder_hidden_size=8))
    randomise(model)
    x = inputs()
    with torch.no_grad():
        batched = model(**x).logits
        for row, length in ((0, 11), (1, 7), (2, 4)):
            alone = model(input_ids=x["input_ids"][row:row + 1, :length]).logits
            assert (alone - batched[row]).abs().max() <= 1e-5
        model.base_model.encoder.layer[0].attention.self.use_prefix(None)  # a prefix left out changes the output
        assert (model(**x).logits - batched).abs().max() > 1e-3


@pytest.mark.parametrize("model_type", ["bert", "albert", "distilbert"])
@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_only_the_trainable_parameters(model_type, method):
    model = apply_peft(task_model(model_type), PeftConfig(method=method, r=2, adapter_size=3,
                                                          num_virtual_tokens=3, encoder_hidden_size=6))
    randomise(model)
    model.train()
    out = model(**inputs(), labels=torch.tensor([0, 1, 2]))
    out.loss.backward()
    trainable, total = trainable_parameters(model)
    assert 0 < trainable < total
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    head = {n for n, p in model.named_parameters() if n.startswith("classifier.")}
    assert head and all(dict(model.named_parameters())[n].requires_grad for n in head)
    if method == "head":
        assert trainable == sum(p.numel() for n, p in model.named_parameters() if n in head)


def test_soft_prompts_keep_token_outputs_on_the_text_and_refuse_a_text_too_long():
    model = apply_peft(task_model("bert", token_level=True), PeftConfig(method="prompt", num_virtual_tokens=5))
    x = inputs()
    labels = torch.zeros(3, 11, dtype=torch.long)
    out = model(**x, labels=labels)
    assert out.logits.shape == (3, 11, 3) and out.loss is not None
    too_long = torch.randint(2, 100, (1, 36))  # 40 positions: 36 + 5 do not fit
    with pytest.raises(ValueError, match="leaves 35 of the model's 40 positions"):
        model(input_ids=too_long)


def test_bad_settings_are_refused_with_the_reason():
    model = task_model("bert")
    with pytest.raises(ValueError, match=r"match no projection.*available: \['attention.output.dense'"):
        apply_peft(model, PeftConfig(method="lora", target_modules=["q_proj"]))
    tuned = apply_peft(task_model("bert"), PeftConfig(method="lora"))
    with pytest.raises(ValueError, match="already has a lora adapter"):
        apply_peft(tuned, PeftConfig(method="prefix"))
    for bad in (dict(r=0), dict(r=-2), dict(num_virtual_tokens=0), dict(method="ia3")):
        with pytest.raises(ValueError):
            PeftConfig(**bad)


@pytest.mark.parametrize("arch,preset", [("bert", "base"), ("albert", "base"), ("distilbert", "base"), ("xlm", "base")])
def test_trainable_counts_from_the_module_tree_equal_the_formulas(arch, preset):
    from bertkit.finetuning.peft_counts import ALL, peft_rows

    config = BertConfig.preset(preset, model_type=arch)
    rows = peft_rows(config, ALL, PeftConfig(r=8, adapter_size=64, num_virtual_tokens=20), num_labels=2)
    head = (config.hidden_size + 1) * 2
    for method, trainable, total, _, value in rows:
        assert trainable - head == value, method
        assert total >= rows[0][2]
    shares = {method: trainable / total for method, trainable, total, _, _ in rows}
    if arch == "bert":  # LoRA's selling point: it trains well under 1 % of BERT-base
        assert shares["lora"] < 0.01 and shares["prompt"] < shares["lora"] < shares["houlsby"]


def test_params_cli_prints_the_peft_table_and_plots_it(tmp_path, capsys):
    from bertkit.cli import main

    png = tmp_path / "p.png"
    assert main(["params", "--peft", "lora", "--lora-r", "8", "--preset", "base", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "lora" in out and "296,450" in out and "0.270%" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["params", "--peft", "dora"]) != 0
    assert "peft method must be one of" in capsys.readouterr().err


def test_lora_dropout_drops_the_branch_input_keeping_its_expectation():
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(16, 8), r=4, alpha=8, dropout=0.5)
    torch.nn.init.normal_(layer.lora_B.weight)
    x = torch.randn(3, 16)
    with torch.no_grad():
        base, exact = layer.base_layer(x), layer.eval()(x)
        layer.train()
        draws = torch.stack([layer(x) for _ in range(4000)])
    assert not torch.allclose(draws[0], draws[1])  # a fresh mask each call
    from bertkit.model.dropout import keep_mask

    with torch.no_grad():  # exactly the inverted-dropout math, with the mask the same seed draws
        torch.manual_seed(5)
        out = layer(x)
        torch.manual_seed(5)
        keep, keep_probability = keep_mask(x.shape, 0.5)
        dropped = x * keep / keep_probability
        expected = base + layer.lora_B(layer.lora_A(dropped)) * layer.scaling
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    # the branch is linear in its input, so inverted dropout leaves its mean unchanged: E[out] = the eval output
    torch.testing.assert_close(draws.mean(0), exact, atol=0.1 * (exact - base).abs().max().item(), rtol=0)


def test_lora_initialises_as_peft_and_its_default_keeps_every_input():
    """A: kaiming-uniform with a = √5 (bound 1/√in), B: zero; no dropout unless asked."""
    torch.manual_seed(0)
    layer = LoraLinear(torch.nn.Linear(256, 8), r=64, alpha=16)
    bound = 1 / 256 ** 0.5
    assert layer.lora_A.weight.abs().max() <= bound and layer.lora_A.weight.abs().max() > 0.99 * bound
    assert not layer.lora_B.weight.any() and layer.lora_A.bias is None and layer.lora_B.bias is None
    torch.nn.init.normal_(layer.lora_B.weight)
    x = torch.randn(3, 256)
    expected = layer.base_layer(x) + x @ layer.lora_A.weight.T @ layer.lora_B.weight.T * (16 / 64)
    torch.testing.assert_close(layer.train()(x), expected)  # training, yet nothing dropped
