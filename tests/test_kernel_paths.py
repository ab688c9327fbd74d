"""kernels.py's speed paths: each gives the plain math's numbers, and each is taken exactly where its docstring says
(a spy on oneDNN's fused linear counts the calls) and never for a module that is not plain or that a hook watches."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bertkit.model import kernels

pytestmark = pytest.mark.skipif(not kernels.ONEDNN_AVAILABLE, reason="this torch build has no oneDNN fused linear")


@pytest.fixture()
def fused(monkeypatch) -> list[str]:
    """The post-op of every call of oneDNN's fused linear ('none' or 'gelu')."""
    calls, original = [], torch.ops.mkldnn._linear_pointwise

    def spy(*args):
        calls.append(args[3])
        return original(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy)
    return calls


def layer(rows_in: int = 6, rows_out: int = 5, bias: bool = True, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(rows_in, rows_out, bias=bias)


def test_onednn_is_found_in_this_build():
    assert kernels._onednn_linear_available() and kernels._onednn_on


def test_inference_linear_and_gelu_go_through_onednn_with_the_plain_numbers(fused):
    projection, x = layer(), torch.randn(3, 4, 6)
    with torch.no_grad():
        torch.testing.assert_close(kernels.linear(projection, x), F.linear(x, projection.weight, projection.bias))
        torch.testing.assert_close(kernels.linear_activation(projection, nn.GELU(), x),
                                   F.gelu(F.linear(x, projection.weight, projection.bias)))
        kernels.linear(layer(bias=False), x)  # no bias: oneDNN takes None
    assert fused == ["none", "gelu", "none"]


@pytest.mark.parametrize("case", ["one row", "bf16 input", "fp64 weight", "gradient", "autocast", "switched off"])
def test_onednn_steps_aside_where_it_does_not_apply(fused, case):
    projection, x = layer(), torch.randn(4, 6)
    if case == "one row":
        x = x[:1]
    elif case == "bf16 input":
        projection, x = projection.bfloat16(), x.bfloat16()
    elif case == "fp64 weight":
        projection = projection.double()
    context = torch.enable_grad() if case == "gradient" else torch.no_grad()
    with context:
        if case == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                kernels.linear(projection, x)
        elif case == "switched off":
            with kernels.onednn_linear(False):
                kernels.linear(projection, x)
        elif case == "fp64 weight":
            with pytest.raises(RuntimeError):  # F.linear refuses mixed dtypes: the point is oneDNN was not asked
                kernels.linear(projection, x)
        else:
            out = kernels.linear(projection, x)
            torch.testing.assert_close(out, F.linear(x, projection.weight, projection.bias))
    assert fused == []


def test_gradients_need_the_plain_path_only_where_something_requires_them(fused):
    projection, x = layer(), torch.randn(4, 6)
    projection.requires_grad_(False)
    kernels.linear(projection, x)  # grad mode on, but nothing to differentiate
    assert fused == ["none"]
    kernels.linear(projection, x.requires_grad_())
    assert fused == ["none"]


def test_the_switch_restores_the_setting_it_found():
    before = kernels._onednn_on
    with kernels.onednn_linear(False):
        assert not kernels._onednn_on
        with kernels.onednn_linear(True):
            assert kernels._onednn_on
        assert not kernels._onednn_on
    assert kernels._onednn_on == before


class Subclassed(nn.Linear):
    """A projection replaced by a subclass (a quantized or adapter linear) runs its own forward."""

    def forward(self, x):
        return super().forward(x) * 2


def test_only_exact_plain_modules_without_hooks_are_plain():
    assert kernels.is_plain(layer(), layer(seed=1))
    assert not kernels.is_plain(layer(), Subclassed(6, 5))
    hooked, pre_hooked = layer(), layer()
    hooked.register_forward_hook(lambda *args: None)
    pre_hooked.register_forward_pre_hook(lambda *args: None)
    assert not kernels.is_plain(hooked) and not kernels.is_plain(pre_hooked)
    for register in (nn.modules.module.register_module_forward_hook,
                     nn.modules.module.register_module_forward_pre_hook):
        handle = register(lambda *args: None)
        try:
            assert not kernels.is_plain(layer())
        finally:
            handle.remove()
    assert kernels.is_plain(nn.GELU(), kind=nn.GELU) and not kernels.is_plain(nn.ReLU(), kind=nn.GELU)
    assert kernels.is_exact_gelu(nn.GELU()) and not kernels.is_exact_gelu(nn.GELU(approximate="tanh"))


def test_a_module_that_is_not_plain_runs_its_own_forward_and_hooks_see_it(fused):
    x, seen = torch.randn(4, 6), []
    watched = layer()
    watched.register_forward_hook(lambda module, args, out: seen.append(module))
    replaced = Subclassed(6, 5)
    with torch.no_grad():
        torch.testing.assert_close(kernels.linear(replaced, x), 2 * F.linear(x, replaced.weight, replaced.bias))
        kernels.linear_activation(watched, nn.GELU(), x)
        tanh = kernels.linear_activation(layer(), nn.GELU(approximate="tanh"), x)
    torch.testing.assert_close(tanh, F.gelu(F.linear(x, layer().weight, layer().bias), approximate="tanh"))
    assert seen == [watched] and fused == ["none"]  # only tanh-GELU's projection, alone, took oneDNN


def qkv(bias: bool = True) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
    return layer(6, 6, bias, 1), layer(6, 6, bias, 2), layer(6, 6, bias, 3)


@pytest.mark.parametrize("bias", [True, False])
def test_fused_qkv_in_training_equals_three_projections(bias):
    modules, x = qkv(bias), torch.randn(2, 3, 6, requires_grad=True)
    fused_out = kernels.project_qkv(*modules, x, training=True)
    for got, module in zip(fused_out, modules, strict=True):
        torch.testing.assert_close(got, module(x))
    sum(t.sum() for t in fused_out).backward()
    torch.testing.assert_close(x.grad, sum(m.weight.sum(0) for m in modules).expand(2, 3, 6))


def test_fused_qkv_is_one_gemm_and_steps_aside_for_a_hook(monkeypatch):
    modules, x, seen, gemms = qkv(), torch.randn(2, 3, 6), [], []
    original = F.linear
    monkeypatch.setattr(kernels.F, "linear", lambda *args: gemms.append(args[1].shape) or original(*args))
    kernels.project_qkv(*modules, x, training=True)
    assert gemms == [(18, 6)]  # one GEMM over the three concatenated weights
    gemms.clear()
    for watched in modules:  # a hook on any of the three: three separate projections
        fresh = qkv()
        fresh[modules.index(watched)].register_forward_hook(lambda module, args, out: seen.append(module))
        kernels.project_qkv(*fresh, x, training=True)
    assert len(seen) == 3 and (18, 6) not in gemms  # module by module, each projection its own call


@pytest.mark.parametrize("down_bias", [True, False])
def test_feed_forward_in_training_equals_the_plain_math_and_its_gradients(down_bias):
    up, down = layer(6, 12, seed=4), layer(12, 6, bias=down_bias, seed=5)
    x = torch.randn(2, 3, 6, requires_grad=True)
    out = kernels.feed_forward(up, nn.GELU(), down, x, training=True)
    expected = down(F.gelu(up(x)))
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, up.weight, down.weight])
    for got, want in zip(grads, torch.autograd.grad(expected.square().sum(), [x, up.weight, down.weight]),
                         strict=True):
        torch.testing.assert_close(got, want)


def test_feed_forward_recomputes_the_gelu_only_for_plain_exact_modules(monkeypatch):
    used = []
    original = kernels.gelu_linear
    monkeypatch.setattr(kernels, "gelu_linear", lambda *args: used.append(1) or original(*args))
    up, down, x = layer(6, 12), layer(12, 6), torch.randn(2, 6)
    kernels.feed_forward(up, nn.GELU(), down, x, training=True)
    assert used == [1]
    kernels.feed_forward(up, nn.GELU(approximate="tanh"), down, x, training=True)
    kernels.feed_forward(up, nn.GELU(), down, x, training=False)
    kernels.feed_forward(up, nn.GELU(), Subclassed(12, 6), x, training=True)
    kernels.feed_forward(Subclassed(6, 12), nn.GELU(), down, x, training=True)
    assert used == [1]


def heads(seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g, dtype=dtype) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 5, dtype=dtype)
    mask[1, ..., 3:] = torch.finfo(dtype).min
    return q, k, v, mask


def reference_attention(q, k, v, mask):
    """softmax(QKᵀ/√d + mask)·V in float64."""
    scores = q.double() @ k.double().transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask.double()
    probs = scores.softmax(-1)
    return probs @ v.double(), probs


def test_attention_paths_equal_the_formula():
    q, k, v, mask = heads()
    context, probs = reference_attention(q, k, v, mask)
    fast, none = kernels.attention(q, k, v, mask, 0.0, return_probs=False)
    assert none is None
    torch.testing.assert_close(fast.double(), context, rtol=1e-5, atol=1e-5)
    explicit, maps = kernels.attention(q, k, v, mask, 0.0, return_probs=True)
    torch.testing.assert_close(explicit.double(), context, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(maps.double(), probs, rtol=1e-5, atol=1e-6)
    unmasked, _ = kernels.attention(q, k, v, None, 0.0, return_probs=True)
    torch.testing.assert_close(unmasked.double(), reference_attention(q, k, v, torch.zeros(1))[0], rtol=1e-5,
                               atol=1e-5)


def test_a_mask_of_another_dtype_is_cast_and_minus_infinity_is_clamped():
    q, k, v, mask = heads(dtype=torch.bfloat16)
    wide = mask.float()
    wide[0, ..., 4] = -torch.inf  # an additive mask written with -inf
    context, _ = kernels.attention(q, k, v, wide, 0.0, return_probs=False)
    expected, _ = reference_attention(q, k, v, wide.clamp(min=torch.finfo(torch.bfloat16).min))
    torch.testing.assert_close(context.double(), expected, rtol=0.05, atol=0.05)
    everything_masked = torch.full((2, 1, 1, 5), -torch.inf)
    probs = kernels.attention_probs(q.float(), k.float(), everything_masked)
    torch.testing.assert_close(probs, torch.full_like(probs, 0.2))  # a finite floor: uniform, not NaN


def test_dropout_on_the_cpu_takes_the_explicit_path_and_keeps_the_expectation():
    q, k, v, mask = heads()
    torch.manual_seed(0)
    runs = torch.stack([kernels.attention(q, k, v, mask, 0.5, return_probs=False)[0] for _ in range(400)])
    context, _ = reference_attention(q, k, v, mask)
    assert (runs[0] != runs[1]).any()  # dropped differently each call
    torch.testing.assert_close(runs.double().mean(0), context, rtol=0.1, atol=0.1)


def test_exporting_is_seen_while_torch_export_traces():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(kernels.exporting())
            return x + 1

    assert not kernels.exporting()
    torch.export.export(Probe(), (torch.randn(2),))
    assert seen and all(seen)


def test_the_explicit_path_is_taken_for_maps_or_cpu_dropout_only(monkeypatch):
    taken, original = [], kernels.explicit_attention
    monkeypatch.setattr(kernels, "explicit_attention", lambda *args: taken.append(args[-1]) or original(*args))
    q, k, v, mask = heads()
    assert kernels.attention(q, k, v, mask, 0.0, return_probs=False)[1] is None
    assert taken == []  # SDPA
    assert kernels.attention(q, k, v, mask, 0.5, return_probs=False)[1] is None  # maps not asked: none returned
    assert kernels.attention(q, k, v, mask, 0.0, return_probs=True)[1] is not None
    assert taken == [0.5, 0.0]
