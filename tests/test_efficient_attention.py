"""The efficient attention kernels (bertkit/model/efficient/) against exact softmax attention where they must match
it: torch's scaled_dot_product_attention and dense masked softmax written out here are the oracles."""

import math

import pytest
import torch
import torch.nn.functional as F

from bertkit.config import BertConfig
from bertkit.model import BertModel
from bertkit.model.efficient import build_kernel
from bertkit.model.encoder import additive_padding_mask


def config(**overrides) -> BertConfig:
    return BertConfig(**dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=48, max_position_embeddings=64, hidden_dropout_prob=0.0,
                             attention_probs_dropout_prob=0.0) | overrides)


def qkv(batch=2, heads=4, n=16, d=8, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, n, d, generator=generator, dtype=dtype) for _ in range(3)]


def padding(batch: int, n: int, lengths: list[int], dtype=torch.float32):
    """The encoder's additive mask and the (batch, n) 1/0 mask for right-padded rows of these lengths."""
    keep = torch.zeros(batch, n, dtype=torch.long)
    for row, length in enumerate(lengths):
        keep[row, :length] = 1
    return additive_padding_mask(keep, dtype), keep.bool()


def dense(q, k, v, allowed, scores=None):
    """Exact softmax attention restricted to ``allowed`` (broadcastable to (b, h, n, n)) keys."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) if scores is None else scores
    return scores.masked_fill(~allowed, float("-inf")).softmax(-1) @ v


def close_on(a, b, keep, atol):
    """Outputs agree at real (unpadded) query positions."""
    mask = keep[:, None, :, None].expand_as(a)
    return (a - b).abs()[mask].max().item() <= atol


# --- local sliding window + global tokens -------------------------------------------------------------------------

def test_local_window_covering_the_sequence_is_exact_attention_with_padding():
    q, k, v = qkv(n=16)
    mask, keep = padding(2, 16, [16, 11])
    kernel = build_kernel(config(attention="local", local_window=16, local_global_tokens=[0, 5]))
    ours, _ = kernel(q, k, v, mask, 0.0)
    exact = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
    assert close_on(ours, exact, keep, 1e-5)


@pytest.mark.parametrize("window,global_tokens", [(4, [0]), (2, [0, 7, 30]), (8, []), (4, [3, 12])])
def test_local_window_equals_dense_band_mask_with_global_rows_and_columns(window, global_tokens):
    n = 24
    q, k, v = qkv(n=n, seed=1)
    mask, keep = padding(2, n, [n, 17])
    kernel = build_kernel(config(attention="local", local_window=window, local_global_tokens=global_tokens))
    ours, _ = kernel(q, k, v, mask, 0.0)
    i = torch.arange(n)
    is_global = torch.zeros(n, dtype=torch.bool)
    is_global[[p for p in global_tokens if p < n]] = True
    allowed = ((i[:, None] - i[None, :]).abs() <= window) | is_global[:, None] | is_global[None, :]
    exact = dense(q, k, v, allowed & keep[:, None, None, :])
    assert close_on(ours, exact, keep, 1e-5)


# --- LSH (Reformer) -----------------------------------------------------------------------------------------------

def shared_qk_attention(q, v, keep):
    """Reformer's attention without hashing: keys = q/|q|, unscaled scores, self only as a last resort."""
    scores = q @ F.normalize(q, dim=-1).transpose(-1, -2)
    n = q.shape[2]
    scores = scores.masked_fill(torch.eye(n, dtype=torch.bool), -1e5)
    return dense(q, None, v, keep[:, None, None, :], scores=scores)


@pytest.mark.parametrize("rounds", [1, 3])
def test_lsh_with_one_bucket_and_one_chunk_is_exact_shared_qk_attention(rounds):
    q, _, v = qkv(n=16, seed=2)
    mask, keep = padding(2, 16, [16, 9])
    kernel = build_kernel(config(attention="lsh", lsh_num_buckets=1, lsh_chunk_size=16, lsh_rounds=rounds)).eval()
    ours, _ = kernel(q, torch.randn_like(q), v, mask, 0.0)  # shared QK: the keys passed in are not used
    assert close_on(ours, shared_qk_attention(q, v, keep), keep, 1e-5)


def test_lsh_attends_only_within_its_chunk_and_the_previous_one():
    # one bucket: sorted order is position order, so chunk c of 4 positions sees chunks c−1 and c only
    n, chunk = 16, 4
    q, _, v = qkv(batch=1, n=n, seed=3)
    kernel = build_kernel(config(attention="lsh", lsh_num_buckets=1, lsh_chunk_size=chunk, lsh_rounds=1)).eval()
    ours, _ = kernel(q, q, v, None, 0.0)
    block = torch.arange(n) // chunk
    allowed = (block[:, None] - block[None, :] >= 0) & (block[:, None] - block[None, :] <= 1)
    scores = (q @ F.normalize(q, dim=-1).transpose(-1, -2)).masked_fill(torch.eye(n, dtype=torch.bool), -1e5)
    assert (ours - dense(q, None, v, allowed, scores=scores)).abs().max() <= 1e-5


def test_lsh_with_buckets_gives_right_padded_rows_what_unpadded_ones_give():
    q, _, v = qkv(batch=1, n=32, seed=4)
    kernel = build_kernel(config(attention="lsh", lsh_num_buckets=4, lsh_chunk_size=8, lsh_rounds=2)).eval()
    alone, _ = kernel(q[:, :, :16], None, v[:, :, :16], None, 0.0)
    mask, _ = padding(1, 32, [16])
    padded, _ = kernel(q, None, v, mask, 0.0)
    assert (padded[:, :, :16] - alone).abs().max() <= 1e-6
    exact = shared_qk_attention(q[:, :, :16], v[:, :, :16], torch.ones(1, 16, dtype=torch.bool))
    assert (alone - exact).abs().max() > 1e-3  # buckets do leave keys out: the test above is not vacuous


# --- Performer (FAVOR+) -------------------------------------------------------------------------------------------

def performer_error(num_features: int, causal: bool, seeds=range(4)) -> float:
    errors = []
    for seed in seeds:
        torch.manual_seed(seed)
        q, k, v = qkv(batch=1, heads=2, n=32, d=16, seed=seed)
        q, k = q * 0.5, k * 0.5  # moderate scores, as trained attention has
        kernel = build_kernel(config(attention="performer", performer_features=num_features, hidden_size=32,
                                     num_attention_heads=2, performer_causal=causal)).eval()
        ours, _ = kernel(q, k, v, None, 0.0)
        exact = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        errors.append((ours - exact).abs().mean().item())
    return sum(errors) / len(errors)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_performer_error_shrinks_as_features_grow(causal):
    errors = [performer_error(m, causal) for m in (8, 32, 128, 512, 2048)]
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < errors[0] / 8, errors  # Monte Carlo: error ∝ 1/√m; 256× the features → ~1/16
    assert errors[-1] < 0.05, errors


def test_performer_causal_chunks_equal_literal_prefix_sums():
    q, k, v = qkv(batch=2, heads=4, n=20, d=8, dtype=torch.float64, seed=5)
    kernel = build_kernel(config(attention="performer", performer_features=16, performer_causal=True)).eval()
    kernel.chunk = 6  # chunks of 6, 6, 6, 2: the running state crosses three borders
    ours, _ = kernel(q, k, v, None, 0.0)
    fq, fk = kernel.features(q, None, is_query=True), kernel.features(k, None, is_query=False)
    prefix_kv = torch.cumsum(fk.unsqueeze(-1) * v.unsqueeze(-2), dim=2)  # Σ_{j≤i} φ(k_j) v_jᵀ
    prefix_k = torch.cumsum(fk, dim=2)
    literal = (fq.unsqueeze(-2) @ prefix_kv).squeeze(-2) / (fq * prefix_k).sum(-1, keepdim=True)
    assert (ours - literal).abs().max() <= 1e-12


def test_performer_ignores_padded_keys():
    q, k, v = qkv(batch=1, n=16, seed=6)
    kernel = build_kernel(config(attention="performer", performer_features=64)).eval()
    alone, _ = kernel(q[:, :, :10], k[:, :, :10], v[:, :, :10], None, 0.0)
    mask, _ = padding(1, 16, [10])
    k = k.clone()
    k[:, :, 10:] *= 50  # huge padded keys must not matter
    padded, _ = kernel(q, k, v, mask, 0.0)
    assert (padded[:, :, :10] - alone).abs().max() <= 1e-5


def test_performer_redraws_features_on_schedule_in_training_only():
    kernel = build_kernel(config(attention="performer", performer_features=16, performer_redraw=3))
    q, k, v = qkv(batch=1, n=8, seed=7)
    first = kernel.projection.clone()
    kernel.train()
    for _ in range(3):
        kernel(q, k, v, None, 0.0)
    assert torch.equal(kernel.projection, first)
    kernel(q, k, v, None, 0.0)  # the 4th call redraws
    assert not torch.equal(kernel.projection, first)
    drawn = kernel.projection.clone()
    kernel.eval()
    for _ in range(5):
        kernel(q, k, v, None, 0.0)
    assert torch.equal(kernel.projection, drawn)
    # rows come in blocks of orthogonal directions
    block = drawn[:8] / drawn[:8].norm(dim=1, keepdim=True)
    assert (block @ block.T - torch.eye(8)).abs().max() <= 1e-5


# --- Linformer ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shared", [True, False])
def test_linformer_with_k_equal_n_and_identity_projections_is_exact_attention(shared):
    n = 16
    q, k, v = qkv(n=n, seed=8)
    kernel = build_kernel(config(attention="linformer", linformer_k=n, linformer_shared=shared))
    with torch.no_grad():
        for projection in (kernel.E, kernel.F):
            projection.zero_()
            projection[..., :n].copy_(torch.eye(n))
    ours, _ = kernel(q, k, v, None, 0.0)
    assert (ours - F.scaled_dot_product_attention(q, k, v)).abs().max() <= 1e-5


def test_linformer_gives_right_padded_rows_what_unpadded_ones_give():
    q, k, v = qkv(batch=1, n=24, seed=9)
    kernel = build_kernel(config(attention="linformer", linformer_k=8, linformer_shared=False))
    assert kernel.E.shape == (4, 8, 64)
    alone, _ = kernel(q[:, :, :12], k[:, :, :12], v[:, :, :12], None, 0.0)
    mask, _ = padding(1, 24, [12])
    padded, _ = kernel(q, k, v, mask, 0.0)
    assert (padded[:, :, :12] - alone).abs().max() <= 1e-5


# --- gradients, models, saving ------------------------------------------------------------------------------------

KERNELS = {
    "linformer": dict(linformer_k=4, linformer_shared=False),
    "performer": dict(performer_features=6),
    "performer-causal": dict(performer_features=6, performer_causal=True),
    "lsh": dict(lsh_num_buckets=4, lsh_chunk_size=4, lsh_rounds=2),
    "local": dict(local_window=2, local_global_tokens=[0, 5]),
}


@pytest.mark.parametrize("name", KERNELS)
def test_gradients_match_finite_differences_in_float64(name):
    kernel = build_kernel(config(attention=name.split("-")[0], hidden_size=8, num_attention_heads=2,
                                 **KERNELS[name])).double().eval()
    if name.startswith("performer"):
        kernel.chunk = 3
    q, k, v = (t.requires_grad_() for t in qkv(batch=2, heads=2, n=8, d=4, dtype=torch.float64, seed=10))
    mask, _ = padding(2, 8, [8, 6], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda q, k, v: kernel(q, k, v, mask, 0.0)[0], (q, k, v), fast_mode=True)


@pytest.mark.parametrize("name", KERNELS)
def test_model_trains_and_reloads_with_each_kernel(name, tmp_path):
    torch.manual_seed(0)
    model = BertModel(config(attention=name.split("-")[0], attention_probs_dropout_prob=0.1, **KERNELS[name]))
    ids = torch.randint(0, 60, (2, 16))
    attention_mask = torch.ones(2, 16, dtype=torch.long)
    attention_mask[1, 12:] = 0
    model.train()
    model(ids, attention_mask).last_hidden_state.pow(2).mean().backward()
    grads = [p.grad for n, p in model.named_parameters() if "attention.self.query" in n]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        before = model(ids, attention_mask).last_hidden_state
    model.save_pretrained(tmp_path)
    loaded = BertModel.from_pretrained(tmp_path)
    assert loaded.config.attention == model.config.attention
    assert not loaded.loading_report.missing and not loaded.loading_report.unexpected
    with torch.no_grad():
        after = loaded(ids, attention_mask).last_hidden_state
    assert torch.equal(before, after)


def test_full_attention_adds_no_module_and_no_weight():
    assert build_kernel(config()) is None
    names = set(BertModel(config()).state_dict())
    assert not any("kernel" in n for n in names)
    assert "attention" not in config().to_dict()  # a full-attention config.json is unchanged


# --- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,message", [
    (dict(attention="sparse"), "config.attention must be one of"),
    (dict(attention="lsh", lsh_num_buckets=3), "lsh_num_buckets must be 1 or even"),
    (dict(attention="local", local_window=0), "local_window must be an integer"),
    (dict(attention="linformer", linformer_k=65), "linformer_k=65 exceeds max_position_embeddings=64"),
    (dict(attention="local", local_global_tokens=[0, -1]), "local_global_tokens must be a list"),
    (dict(attention="performer", position_embedding_type="relative_bias"), "cannot add T5's relative bias"),
])
def test_bad_attention_settings_are_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        config(**overrides)


@pytest.mark.parametrize("overrides,n,message", [
    (dict(attention="lsh", lsh_chunk_size=8), 20, "sequence length 20 is not a multiple of lsh_chunk_size=8"),
    (dict(attention="local", local_window=8), 20, "sequence length 20 is not a multiple of local_window=8"),
    (dict(attention="linformer", linformer_k=32), 20, "linformer_k=32 is more than the sequence length 20"),
    (dict(attention="performer"), 20, "never forms the attention maps"),
])
def test_bad_sizes_at_run_time_are_refused_by_name(overrides, n, message):
    model = BertModel(config(**overrides)).eval()
    with pytest.raises(ValueError, match=message):
        model(torch.randint(0, 60, (1, n)), output_attentions=overrides["attention"] == "performer")
