"""The sliced vocabulary cross-entropy's edges against ``F.cross_entropy`` of the full logits: how the vocabulary is
cut, ties across slices, labels on slice borders, a scaled upstream gradient, no labelled row, bf16 inputs."""

import math

import pytest
import torch
import torch.nn.functional as F

from bertkit.model import vocab_loss
from bertkit.model.vocab_loss import vocab_cross_entropy, vocab_slices


@pytest.mark.parametrize("rows", [0, 1, 150, 4096, 5000, 1 << 14, 10**6])
def test_slices_are_powers_of_two_that_cover_the_vocabulary(rows):
    vocab = 5_000_000  # wider than one slice of any row count
    slices = vocab_slices(rows, vocab)
    budget = vocab_loss.SLICE_ELEMENTS // max(rows, 1)
    width = max(256, 2 ** math.floor(math.log2(budget))) if budget else 256  # the widest power of two that fits
    assert [s.start for s in slices] == list(range(0, vocab, width))
    assert [s.stop for s in slices] == [min(s.start + width, vocab) for s in slices]


def leaves(rows: int, vocab: int, dim: int = 16, dtype=torch.float64):
    g = torch.Generator().manual_seed(rows + vocab)
    return [torch.randn(*shape, generator=g, dtype=dtype).requires_grad_() for shape in
            ((rows, dim), (vocab, dim), (vocab,))]


def expected(hidden, weight, bias, labels, scale: float = 1.0):
    """The loss, argmax and gradients of the full logits, in float64."""
    inputs = [t.detach().double().requires_grad_() for t in (hidden, weight, bias)]
    logits = inputs[0] @ inputs[1].t() + inputs[2]
    loss = F.cross_entropy(logits, labels)
    return loss, logits.argmax(-1), torch.autograd.grad(scale * loss, inputs)


def test_a_tie_across_slices_predicts_the_first_token_as_argmax_does(monkeypatch):
    monkeypatch.setattr(vocab_loss, "SLICE_ELEMENTS", 8 * 256)  # 8 rows: slices of 256 tokens
    hidden, weight, bias = leaves(8, 700)
    with torch.no_grad():
        weight[300], bias[300] = weight[10], bias[10]  # token 300 (second slice) ties with token 10 (first)
        weight[600], bias[600] = weight[300], bias[300]  # and token 600 (third)
        hidden[:] = weight[10] * 5  # every row's best is the tied triple
    labels = torch.tensor([10, 300, 600, 255, 256, 511, 512, 699])  # both sides of each slice border
    loss, predictions = vocab_cross_entropy(hidden, weight, bias, labels)
    reference_loss, reference_argmax, _ = expected(hidden, weight, bias, labels)
    assert torch.equal(predictions, reference_argmax) and set(predictions.tolist()) == {10}
    assert predictions.dtype == torch.long
    assert loss.item() == pytest.approx(reference_loss.item(), rel=1e-12)


@pytest.mark.parametrize("scale", [3.0, -0.5])
def test_the_upstream_gradient_scales_every_gradient(monkeypatch, scale):
    monkeypatch.setattr(vocab_loss, "SLICE_ELEMENTS", 12 * 256)
    hidden, weight, bias = leaves(12, 600)
    labels = torch.tensor([0, 255, 256, 599, -100, 17, 300, 511, 512, -100, 598, 1])
    loss, _ = vocab_cross_entropy(hidden, weight, bias, labels)
    reference_loss, _, reference_grads = expected(hidden, weight, bias, labels, scale)
    assert loss.item() == pytest.approx(reference_loss.item(), rel=1e-12)
    for ours, theirs in zip(torch.autograd.grad(scale * loss, [hidden, weight, bias]), reference_grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_no_labelled_row_gives_nan_as_cross_entropy_does():
    hidden, weight, bias = leaves(4, 300)
    labels = torch.full((4,), -100)
    loss, predictions = vocab_cross_entropy(hidden, weight, bias, labels)
    assert math.isnan(loss.item()) and math.isnan(F.cross_entropy(hidden @ weight.t() + bias, labels).item())
    assert torch.equal(predictions, (hidden @ weight.t() + bias).argmax(-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_narrow_inputs_accumulate_in_fp32_and_keep_their_dtypes(monkeypatch, dtype):
    monkeypatch.setattr(vocab_loss, "SLICE_ELEMENTS", 32 * 256)
    hidden, weight, bias = leaves(32, 1000, dtype=dtype)
    labels = torch.randint(0, 1000, (32,), generator=torch.Generator().manual_seed(1))
    loss, _ = vocab_cross_entropy(hidden, weight, bias, labels)
    assert loss.dtype == torch.float32
    # the GEMMs run in the inputs' dtype (as F.linear would); the log-sum-exp over all slices in fp32
    logits = F.linear(hidden, weight, bias).float()
    assert loss.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-5)
    grads = torch.autograd.grad(loss, [hidden, weight, bias])
    assert [g.dtype for g in grads] == [dtype] * 3
    _, _, reference = expected(hidden, weight, bias, labels)
    for ours, theirs in zip(grads, reference, strict=True):
        assert (ours.double() - theirs).norm() / theirs.norm() < (1e-5 if dtype == torch.float32 else 2e-2)
