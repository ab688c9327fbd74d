"""Rotary position embeddings as a position option of any architecture: the rotation and the attention against a
float64 formula written here, BERT with rotary positions trains, a GPT-2-shaped decoder's cache gives the full
forward's logits, folders keep the settings, and bad settings are refused with the reason."""

import math

import pytest
import torch
from family_fixtures import perturb

from bertkit.config import BertConfig
from bertkit.model.attention import SelfAttention
from bertkit.model.auto import AutoModel
from bertkit.model.bert import BertForMaskedLM
from bertkit.model.efficient import build_kernel
from bertkit.model.gpt2 import GPT2LMHeadModel
from bertkit.model.rotary import rotary_table, rotate

TINY = dict(vocab_size=50, hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def rotation_matrix(position: int, dim: int, width: int, base: float) -> torch.Tensor:
    """(width, width) float64: a 2×2 rotation by position·base^(−2i/dim) on features (2i, 2i+1), i < dim/2."""
    matrix = torch.eye(width, dtype=torch.float64)
    for i in range(dim // 2):
        angle = position * base ** (-2 * i / dim)
        c, s = math.cos(angle), math.sin(angle)
        matrix[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return matrix


@pytest.mark.parametrize("dim", [12, 6])
def test_rotate_turns_each_pair_as_its_rotation_matrix(dim):
    x = torch.randn(2, 3, 9, 12, dtype=torch.float64)
    frequency = 500.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angle = torch.arange(4, 13, dtype=torch.float64)[:, None] * frequency
    turned = rotate(x, angle.cos(), angle.sin())
    expected = torch.stack([x[..., p, :] @ rotation_matrix(4 + p, dim, 12, 500.0).T for p in range(9)], dim=-2)
    assert (turned - expected).abs().max() <= 1e-12


def test_the_table_is_roformers_sines_then_cosines():
    table = rotary_table(7, 8).double()
    for p in range(7):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert abs(table[p, i] - math.sin(angle)) <= 1e-7 and abs(table[p, 4 + i] - math.cos(angle)) <= 1e-7


@pytest.mark.parametrize("rotary", [dict(), dict(rotary_dim=8, rotary_base=500.0, rotary_value=True)])
def test_attention_equals_the_float64_formula_and_depends_on_distances_only(rotary):
    config = BertConfig(position_embedding_type="rotary", **TINY | rotary)
    torch.manual_seed(0)
    attention = perturb(SelfAttention(config)).eval()
    x = torch.randn(2, 7, 24)
    mask = torch.zeros(2, 1, 1, 7)
    mask[1, ..., 5:] = torch.finfo(torch.float32).min
    with torch.no_grad():
        out, _ = attention(x, mask)
    xd, heads, size = x.double(), 2, 12
    dim = config.rotary_dim or size

    def project(linear):
        y = xd @ linear.weight.double().T + linear.bias.double()
        return y.view(2, 7, heads, size).transpose(1, 2)

    q, k, v = project(attention.query), project(attention.key), project(attention.value)
    turn = torch.stack([rotation_matrix(p, dim, size, config.rotary_base) for p in range(7)])  # (7, size, size)
    q, k = torch.einsum("psd,bhpd->bhps", turn, q), torch.einsum("psd,bhpd->bhps", turn, k)
    if config.rotary_value:
        v = torch.einsum("psd,bhpd->bhps", turn, v)
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(size) + mask.double(), dim=-1)
    expected = (probs @ v).transpose(1, 2).reshape(2, 7, 24)
    assert (out.double() - expected).abs().max() <= 1e-5
    queries, keys = project(attention.query).float(), project(attention.key).float()
    scores = [a @ b.transpose(-1, -2) for a, b, _ in (attention.rotary(queries, keys, keys, start=start)
                                                     for start in (0, 9))]
    assert (scores[0] - scores[1]).abs().max() <= 1e-4  # every position shifted by 9: the same scores


def gpt2_shaped(**rotary) -> GPT2LMHeadModel:
    """A perturbed GPT-2 (pre-LN, causal, no segments) whose positions are rotary instead of learned."""
    config = BertConfig(model_type="gpt2", position_embedding_type="rotary", norm_first=True, is_decoder=True,
                        type_vocab_size=0, pad_token_id=None, hidden_act="gelu_new", layer_norm_eps=1e-5,
                        **TINY | rotary)
    torch.manual_seed(0)
    return perturb(GPT2LMHeadModel(config)).eval()


@pytest.mark.parametrize("rotary", [dict(), dict(rotary_dim=4, rotary_base=100.0, rotary_value=True)])
def test_gpt2_shaped_decoder_step_by_step_with_the_cache_equals_the_full_forward(rotary):
    model = gpt2_shaped(**rotary)
    assert model.transformer.embeddings.position_embeddings is None  # no learned table: rotary only
    ids = torch.randint(0, 50, (2, 11), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids).logits
        out = model(ids[:, :4], use_cache=True)  # a prompt, then one token at a time
        steps, cache = [out.logits], out.past_key_values
        for t in range(4, 11):
            out = model(ids[:, t: t + 1], past_key_values=cache, use_cache=True)
            steps.append(out.logits)
            cache = out.past_key_values
        shifted = model(torch.cat([ids[:, :1], ids], dim=1)).logits[:, 1:]
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-5
    assert (shifted - full).abs().max() > 1e-3  # positions matter: the same tokens one place later differ


def test_bert_with_rotary_positions_trains():
    """A short masked-LM run on sequences that count up by a step (mod 50), one token masked in each: the loss
    falls below half its start."""
    config = BertConfig(position_embedding_type="rotary", **TINY)
    torch.manual_seed(0)
    model = BertForMaskedLM(config).train()
    g = torch.Generator().manual_seed(0)
    start, step = torch.randint(0, 50, (32, 1), generator=g), torch.randint(1, 4, (32, 1), generator=g)
    ids = (start + step * torch.arange(10)) % 50
    where, rows = torch.randint(1, 9, (32,), generator=g), torch.arange(32)
    labels = torch.full_like(ids, -100)
    labels[rows, where] = ids[rows, where]
    inputs = ids.clone()
    inputs[rows, where] = 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        loss = model(inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0]


def test_angles_cached_in_inference_mode_serve_a_training_step_after():
    model = BertForMaskedLM(BertConfig(position_embedding_type="rotary", **TINY))
    ids = torch.randint(1, 50, (2, 13))
    with torch.inference_mode():
        model.eval()(ids)
    model.train()(ids, labels=ids).loss.backward()  # the same length: the cached angles are used again
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_a_bert_folder_with_rotary_positions_reads_back_the_same_model(tmp_path):
    config = BertConfig(position_embedding_type="rotary", rotary_dim=6, rotary_base=1000.0, rotary_value=True, **TINY)
    torch.manual_seed(0)
    model = perturb(AutoModel.from_config(config)).eval()
    model.save_pretrained(tmp_path)
    again = AutoModel.from_pretrained(tmp_path)
    assert again.config == config
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        assert (model(ids).last_hidden_state - again(ids).last_hidden_state).abs().max() == 0


@pytest.mark.parametrize("fields, message", [
    (dict(rotary_dim=5), "rotary_dim must be an even integer from 2 to the head size 12"),
    (dict(rotary_dim=14), "rotary_dim must be an even integer from 2 to the head size 12"),
    (dict(rotary_dim=0), "rotary_dim must be an even integer"),
    (dict(hidden_size=26, num_attention_heads=2), "the head size 13 is odd"),
    (dict(rotary_base=1.0), "rotary_base must be a number > 1"),
    (dict(rotary_value="yes"), "rotary_value must be true or false"),
    (dict(attention="linformer", linformer_k=16), "attention='linformer' is not supported"),
])
def test_bad_rotary_settings_are_refused_with_the_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(position_embedding_type="rotary", **TINY | fields)


def test_rotary_settings_without_rotary_positions_are_refused():
    with pytest.raises(ValueError, match=r"rotary_dim=8 set, but position_embedding_type is 'absolute'"):
        BertConfig(rotary_dim=8, **TINY)


def test_an_efficient_kernel_is_refused_on_a_rotary_attention_block():
    attention = SelfAttention(BertConfig(position_embedding_type="rotary", **TINY))
    kernel = build_kernel(BertConfig(attention="performer", performer_features=8, **TINY))
    with pytest.raises(ValueError, match="rotary"):
        attention.use_kernel(kernel)
