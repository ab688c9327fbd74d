"""The slots other packages fill in a model — an attention block's prefix and kernel, a task model's PEFT settings,
the oneDNN switch — are declared where the class is and changed only through their own calls."""

from __future__ import annotations

import pytest
import torch
from family_fixtures import SHAPE

from bertkit.config import BertConfig
from bertkit.finetuning.models import BertForSequenceClassification, TaskConfig
from bertkit.model import kernels
from bertkit.model.attention import SelfAttention
from bertkit.model.efficient import use_attention
from bertkit.peft import PeftConfig, apply_peft


def classifier(**fields) -> BertForSequenceClassification:
    """A tiny random BERT classifier (2 labels)."""
    torch.manual_seed(0)
    base = BertConfig(**SHAPE | fields)
    shape = {k: getattr(base, k) for k in BertConfig.__dataclass_fields__}
    return BertForSequenceClassification(TaskConfig(**shape, id2label={0: "a", 1: "b"})).eval()


def test_a_task_model_declares_its_peft_slot_and_apply_peft_fills_it():
    model = classifier()
    assert "peft_config" not in vars(model) and model.peft_config is None  # declared on the class, not set
    config = PeftConfig(method="lora", r=2)
    apply_peft(model, config)
    assert model.peft_config is config
    with pytest.raises(ValueError, match="already has a lora adapter"):
        apply_peft(model, PeftConfig(method="bitfit"))


def test_prefix_tuning_is_refused_on_relative_positions_when_added_not_at_the_first_forward():
    model = classifier(position_embedding_type="relative_key")
    with pytest.raises(ValueError, match="prefix tuning adds keys without a position.*relative_key"):
        apply_peft(model, PeftConfig(method="prefix", num_virtual_tokens=3))


def test_use_kernel_switches_the_attention_and_refuses_a_kernel_beside_relative_positions():
    model = classifier()
    ids = torch.randint(3, 100, (2, 8))
    full = model(input_ids=ids).logits
    use_attention(model, "local", local_window=2)
    blocks = [m for m in model.modules() if isinstance(m, SelfAttention)]
    assert all(block.kernel is not None for block in blocks)
    assert not torch.allclose(model(input_ids=ids).logits, full)  # a window of 2 sees less than the whole text
    for block in blocks:
        block.use_kernel(None)
    torch.testing.assert_close(model(input_ids=ids).logits, full, rtol=0, atol=0)
    relative = SelfAttention(BertConfig(**SHAPE | dict(position_embedding_type="relative_key_query")))
    with pytest.raises(ValueError, match="relative positions \\(relative_key_query\\)"):
        relative.use_kernel(torch.nn.Identity())


@pytest.mark.skipif(not kernels.ONEDNN_AVAILABLE, reason="this torch build has no oneDNN fused linear")
def test_the_onednn_switch_holds_only_inside_its_block_even_when_the_block_raises():
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert kernels._onednn_applies(layer, x)
        with kernels.onednn_linear(False):
            assert not kernels._onednn_applies(layer, x)
            torch.testing.assert_close(kernels.linear(layer, x), torch.nn.functional.linear(x, layer.weight,
                                                                                             layer.bias))
            with kernels.onednn_linear(True):
                assert kernels._onednn_applies(layer, x)
            assert not kernels._onednn_applies(layer, x)
        with pytest.raises(RuntimeError, match="inside"):
            with kernels.onednn_linear(False):
                raise RuntimeError("inside")
        assert kernels._onednn_applies(layer, x)
