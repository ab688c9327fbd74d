"""A module replaced by its name changes bertkit's output exactly as it changes transformers': the speed paths
(kernels.py) step aside for anything that is not a plain projection, in train and eval, fp32 and bf16 autocast."""

import pytest
import torch
from family_fixtures import batch, hf_model, max_diff
from torch import nn

from bertkit.model import AutoModelForPreTraining, kernels

PROJECTIONS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
               "intermediate.dense", "output.dense")


class LowRank(nn.Module):
    """``base(x) + B(A(x))``: what a LoRA adapter does to a projection."""

    def __init__(self, base: nn.Linear, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.base = base
        self.A = nn.Parameter(torch.randn(4, base.in_features, generator=g) * 0.3)
        self.B = nn.Parameter(torch.randn(base.out_features, 4, generator=g) * 0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + x @ self.A.t() @ self.B.t()


def replace(model: nn.Module, name: str, seed: int) -> None:
    parent, _, child = name.rpartition(".")
    owner = model.get_submodule(parent)
    setattr(owner, child, LowRank(getattr(owner, child), seed))


def unwrap(model: nn.Module, wrapper: LowRank) -> None:
    for name, module in model.named_modules():
        if module is wrapper:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, wrapper.base)


def pair(case: str, layer: int, projection: str):
    """bertkit and transformers' model with the same weights and the same projection of one layer wrapped."""
    theirs = hf_model(case, "pretraining")
    ours = AutoModelForPreTraining.from_config(_config(theirs))
    ours.load_state_dict({n: theirs.state_dict()[hf] for n, hf in ours.hf_names().items()})
    ours_name = f"{ours.base_model_prefix}.encoder.layer.{layer}.{projection}"
    theirs_name = ours.hf_names()[ours_name + ".weight"].removesuffix(".weight")
    replace(ours, ours_name, seed=layer)
    replace(theirs, theirs_name, seed=layer)
    return ours, theirs, ours.get_submodule(ours_name), theirs.get_submodule(theirs_name)


def _config(theirs):
    from bertkit.config import BertConfig

    return BertConfig.from_dict(theirs.config.to_dict())


def logits(out) -> torch.Tensor:
    return out.prediction_logits if getattr(out, "prediction_logits", None) is not None else out.logits


@pytest.mark.parametrize("projection", PROJECTIONS)
@pytest.mark.parametrize("case", ["bert", "albert", "distilbert"])
def test_replaced_projection_changes_both_libraries_alike(case, projection):
    ours, theirs, ours_module, theirs_module = pair(case, layer=1, projection=projection)
    inputs = batch(case)
    mask = inputs["attention_mask"]
    for training in (False, True):  # dropout is 0 in these configs: training mode runs the training kernels
        ours.train(training)
        theirs.train(training)
        a, b = logits(ours(**inputs)), logits(theirs(**inputs))
        assert max_diff(a, b, mask) <= 1e-4, f"training={training}"
        if training:
            a[mask.bool()].sum().backward()
            b[mask.bool()].sum().backward()
            for p, q in [(ours_module.A, theirs_module.A), (ours_module.base.weight, theirs_module.base.weight)]:
                assert max_diff(p.grad, q.grad) <= 1e-4
    for training in (False, True):  # bf16 autocast: the training kernels and the inference ones
        ours.train(training), theirs.train(training)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a, b = logits(ours(**inputs)), logits(theirs(**inputs))
        assert max_diff(a, b, mask) <= 0.05, f"training={training}"
    unwrap(ours, ours_module)  # the same model without the adapter: the difference must dwarf bf16's rounding
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = logits(ours(**inputs))
    assert max_diff(a, plain, mask) > 4 * max_diff(a, b, mask)


@pytest.mark.parametrize("training", [False, True])
def test_replaced_activation_changes_both_libraries_alike(training):
    theirs = hf_model("bert", "pretraining")
    ours = AutoModelForPreTraining.from_config(_config(theirs))
    ours.load_state_dict({n: theirs.state_dict()[hf] for n, hf in ours.hf_names().items()})
    for model in (ours, theirs):
        model.bert.encoder.layer[2].intermediate.intermediate_act_fn = nn.SiLU()
        model.train(training)
    inputs = batch("bert")
    assert max_diff(logits(ours(**inputs)), logits(theirs(**inputs)), inputs["attention_mask"]) <= 1e-4


def test_fused_training_paths_are_taken_only_for_plain_modules(monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "gelu_linear", lambda *a: calls.append("gelu_linear") or _gelu_linear(*a))
    theirs = hf_model("bert", "pretraining")
    ours = AutoModelForPreTraining.from_config(_config(theirs)).train()
    inputs = batch("bert")
    ours(**inputs)
    assert calls == ["gelu_linear"] * 3  # every layer's FFN recomputes its GELU in the backward
    calls.clear()
    replace(ours, "bert.encoder.layer.1.intermediate.dense", seed=0)
    hook_calls = []
    ours.bert.encoder.layer[2].output.dense.register_forward_hook(lambda *a: hook_calls.append(1))
    ours(**inputs)
    assert calls == ["gelu_linear"]  # layer 0 only: layer 1 is wrapped, layer 2's projection is hooked
    assert hook_calls == [1]


def test_hooks_on_projections_fire_in_inference_too():
    theirs = hf_model("bert", "model")
    from bertkit.model import AutoModel

    ours = AutoModel.from_config(_config(theirs)).eval()
    seen = []
    ours.encoder.layer[0].attention.self.query.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        ours(**batch("bert"))
    assert seen == [torch.Size([3, 17, 36])]


def _gelu_linear(pre, weight, bias):
    from bertkit.model.linear import gelu_linear

    return gelu_linear(pre, weight, bias)
