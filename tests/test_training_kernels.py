"""The pretraining step's memory- and time-saving pieces against plain PyTorch: the chunked vocabulary
cross-entropy (``bertkit.model.vocab_loss``) and the CPU dropout with a cheap mask (``bertkit.model.dropout``)."""

import pytest
import torch
import torch.nn.functional as F

from bertkit.config import BertConfig
from bertkit.model import BertForPreTraining, vocab_loss
from bertkit.model.dropout import Dropout, drop_unscaled, dropout, keep_mask
from bertkit.model.vocab_loss import vocab_cross_entropy


def leaves(*shapes, dtype=torch.float64):
    return [torch.randn(*shape, dtype=dtype, requires_grad=True) for shape in shapes]


@pytest.mark.parametrize("slice_elements", [1, 150 * 300, 1 << 30])  # slices of 256, 300 and all 1000 tokens
def test_vocab_cross_entropy_equals_cross_entropy_of_the_logits(slice_elements, monkeypatch):
    monkeypatch.setattr(vocab_loss, "SLICE_ELEMENTS", slice_elements)
    torch.manual_seed(0)
    hidden, weight, bias = leaves((150, 32), (1000, 32), (1000,))
    labels = torch.randint(0, 1000, (150,))
    labels[::9] = -100  # unlabelled rows do not count
    loss, predictions = vocab_cross_entropy(hidden, weight, bias, labels)
    logits = hidden @ weight.t() + bias
    expected = F.cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    assert torch.equal(predictions, logits.argmax(-1))
    for ours, theirs in zip(torch.autograd.grad(loss, [hidden, weight, bias]),
                            torch.autograd.grad(expected, [hidden, weight, bias]), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


def test_vocab_cross_entropy_under_bf16_autocast_keeps_fp32_gradients_close_to_fp32():
    torch.manual_seed(0)
    hidden, weight, bias = leaves((64, 32), (300, 32), (300,), dtype=torch.float32)
    labels = torch.randint(0, 300, (64,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = vocab_cross_entropy(hidden, weight, bias, labels)
    grads = torch.autograd.grad(loss, [hidden, weight, bias])
    expected = F.cross_entropy(hidden @ weight.t() + bias, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=2e-2)
    assert all(g.dtype == torch.float32 for g in grads)  # the master weight's gradient is not rounded to bf16
    for ours, theirs in zip(grads, torch.autograd.grad(expected, [hidden, weight, bias]), strict=True):
        assert (ours - theirs).norm() / theirs.norm() < 3e-2


def test_vocab_cross_entropy_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="rows"):
        vocab_cross_entropy(torch.randn(4, 8), torch.randn(10, 8), torch.zeros(10), torch.zeros(5, dtype=torch.long))


def test_fused_mlm_loss_trains_like_the_logits_path():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset("tiny", vocab_size=300)).eval()
    ids = torch.randint(5, 300, (4, 24))
    labels = torch.where(torch.rand(4, 24) < 0.2, ids, torch.full_like(ids, -100))
    labels[:, 3] = ids[:, 3]
    batch = dict(input_ids=ids, labels=labels, next_sentence_label=torch.tensor([0, 1, 1, 0]))
    plain = model(**batch, only_masked_logits=True)
    plain_grads = torch.autograd.grad(plain.loss, list(model.parameters()))
    fused = model(**batch, return_logits=False)
    fused_grads = torch.autograd.grad(fused.loss, list(model.parameters()))
    assert fused.prediction_logits is None
    assert torch.equal(fused.mlm_predictions, plain.prediction_logits.argmax(-1))
    assert fused.loss.item() == pytest.approx(plain.loss.item(), abs=1e-5)
    for ours, theirs in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_dropout_mask_drops_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    keep, keep_probability = keep_mask(torch.Size([1000, 1000]), 0.1)
    assert keep.dtype == torch.bool and keep_probability == pytest.approx(0.9, abs=1e-5)
    # 10^6 Bernoulli draws: the kept fraction lies within 5 standard deviations (1.5e-3) of 0.9
    assert abs(keep.float().mean().item() - keep_probability) < 1.5e-3
    x = torch.ones(1000, 1000)
    out = dropout(x, 0.1)
    assert out.mean().item() == pytest.approx(1.0, abs=2e-3)
    values = out.unique().tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1 / keep_probability)]
    assert dropout(x, 0.1, training=False) is x and dropout(x, 0.0) is x


def test_dropout_gradient_uses_the_same_mask_and_seeds_reproduce_it():
    x = torch.randn(64, 64, requires_grad=True)
    torch.manual_seed(3)
    out = Dropout(0.3)(x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * (out / x).max())  # grad = mask / keep probability
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.3)(x), out)
    module = Dropout(0.3).eval()
    assert module(x) is x


def test_unscaled_drop_zeroes_p_keeps_the_rest_as_is_and_saves_only_the_mask():
    torch.manual_seed(1)
    x = torch.randn(500, 400, requires_grad=True)
    dropped, keep_probability = drop_unscaled(x, 0.25)
    assert keep_probability == pytest.approx(0.75, abs=1e-5)
    kept = dropped != 0
    assert abs(kept.float().mean().item() - keep_probability) < 5e-3  # 2·10^5 draws: σ ≈ 1e-3
    assert torch.equal(dropped[kept], x[kept])  # not rescaled: the caller folds 1/keep into what follows
    dropped.sum().backward()
    assert torch.equal(x.grad, kept.float())
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        drop_unscaled(x, 0.25)
    assert saved == [torch.bool]


def test_gelu_linear_equals_linear_of_gelu_and_stores_only_its_input():
    from bertkit.model.linear import gelu_linear

    torch.manual_seed(0)
    pre, weight, bias = leaves((2, 5, 16), (8, 16), (8,))
    out = gelu_linear(pre, weight, bias)
    expected = F.linear(F.gelu(pre), weight, bias)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    grad = torch.randn_like(out)
    for ours, theirs in zip(torch.autograd.grad(out, [pre, weight, bias], grad),
                            torch.autograd.grad(expected, [pre, weight, bias], grad), strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        gelu_linear(pre, weight, bias)
    assert saved == [pre.shape, weight.shape]  # no activation-sized copy of gelu(pre)


def test_dropout_matmul_backward_equals_autograd_of_the_plain_math_with_the_same_mask():
    """The CPU training attention's last step, against autograd through mask · scale · probs @ v (fp64)."""
    from bertkit.model import dropout as dropout_module

    torch.manual_seed(0)
    probs = torch.rand(2, 3, 5, 5, dtype=torch.float64).softmax(-1).requires_grad_()
    v = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    state = torch.get_rng_state()
    out = dropout_module.dropout_matmul(probs, v, 0.3)
    torch.set_rng_state(state)  # the same draws give the same mask
    keep, keep_probability = dropout_module.keep_mask(probs.shape, 0.3)
    reference = (probs * keep / keep_probability) @ v
    torch.testing.assert_close(out, reference)
    grad = torch.randn_like(out)
    ours = torch.autograd.grad(out, (probs, v), grad)
    theirs = torch.autograd.grad(reference, (probs, v), grad)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", ["gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish",
                                  "tanh"])
def test_activations_equal_transformers(name):
    from transformers.activations import ACT2FN

    from bertkit.model.feed_forward import activation

    x = torch.linspace(-6, 6, 2001, dtype=torch.float64)
    torch.testing.assert_close(activation(name)(x), ACT2FN[name](x), atol=1e-6, rtol=1e-6)
