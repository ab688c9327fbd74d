"""GPT-2 on the shared blocks against transformers' GPT2LMHeadModel (a random checkpoint of odd shapes): loading,
logits and hidden states, padded batches, the key / value cache, saving folders transformers loads, refusals."""

import json

import pytest
import torch
import transformers

import bertkit
from bertkit.config import BertConfig
from bertkit.generation import CausalLMStepper
from bertkit.model.gpt2 import GPT2LMHeadModel, GPT2Model, from_hf_layout, to_hf_layout

VOCAB = 101


def reference_config(**overrides) -> transformers.GPT2Config:
    values = dict(vocab_size=VOCAB, n_embd=24, n_head=3, n_layer=2, n_inner=37, n_positions=40, bos_token_id=0,
                  eos_token_id=7, attn_implementation="eager") | overrides
    return transformers.GPT2Config(**values)


@pytest.fixture(scope="module")
def gpt_pair(tmp_path_factory):
    torch.manual_seed(0)
    reference = transformers.GPT2LMHeadModel(reference_config()).eval()
    folder = tmp_path_factory.mktemp("gpt2")
    reference.save_pretrained(folder)
    return reference, bertkit.AutoModelForCausalLM.from_pretrained(folder), folder


def padded_batch():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding, as for generation
    mask[2, :1] = 0
    return ids, mask


def test_config_fields_map_to_the_blocks(gpt_pair):
    _, model, _ = gpt_pair
    config = model.config
    assert isinstance(model, GPT2LMHeadModel)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size,
            config.max_position_embeddings) == (24, 2, 3, 37, 40)
    assert config.norm_first and config.is_decoder and config.type_vocab_size == 0
    assert config.hidden_act == "gelu_new" and config.layer_norm_eps == 1e-5 and config.pad_token_id is None
    assert BertConfig.from_dict({"model_type": "gpt2", "n_embd": 32, "n_head": 4}).intermediate_size == 128
    assert model.loading_report.missing == [] and model.loading_report.unexpected == []


def test_logits_and_hidden_states_match_transformers(gpt_pair, tmp_path):
    reference, model, folder = gpt_pair
    ids, _ = padded_batch()
    bare = GPT2Model.from_pretrained(folder)  # the bare transformer out of the LM folder (prefix dropped)
    with torch.no_grad():
        expected = reference(ids, output_hidden_states=True)
        got = model(ids, output_hidden_states=True)
        hidden = bare(ids).last_hidden_state
    assert torch.allclose(got.logits, expected.logits, atol=1e-5)
    for mine, theirs in zip(got.hidden_states, expected.hidden_states, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-5)
    assert torch.allclose(hidden, expected.hidden_states[-1], atol=1e-5)


def test_left_padded_batch_matches_transformers(gpt_pair):
    reference, model, _ = gpt_pair
    ids, mask = padded_batch()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask, position_ids=positions).logits
        got = model(ids, attention_mask=mask, position_ids=positions).logits
        alone = model(ids[1:2, 3:]).logits  # the padded row, unpadded: the same logits
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)
    assert torch.allclose(got[1, 3:], alone[0], atol=1e-5)


def test_loss_matches_transformers(gpt_pair):
    reference, model, _ = gpt_pair
    ids, _ = padded_batch()
    labels = ids.clone()
    labels[:, :2] = -100
    with torch.no_grad():
        assert torch.allclose(model(ids, labels=labels).loss, reference(ids, labels=labels).loss, atol=1e-5)


def test_cached_steps_equal_the_full_forward(gpt_pair):
    _, model, _ = gpt_pair
    ids, mask = padded_batch()
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        full = model(ids, attention_mask=mask, position_ids=positions).logits
    for use_cache in (True, False):
        stepper = CausalLMStepper(model, mask[:, :5], use_cache=use_cache)
        steps = [stepper.next_logits(ids[:, :5])] + [stepper.next_logits(ids[:, i:i + 1]) for i in range(5, 9)]
        for i, logits in zip(range(4, 9), steps, strict=True):
            assert torch.allclose(logits, full[:, i], atol=1e-5)


def test_saved_folder_loads_in_transformers(gpt_pair, tmp_path):
    reference, model, _ = gpt_pair
    model.save_pretrained(tmp_path)
    values = json.loads((tmp_path / "config.json").read_text())
    assert values["model_type"] == "gpt2" and values["architectures"] == ["GPT2LMHeadModel"]
    assert values["n_inner"] == 37 and "norm_first" not in values
    loaded = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids, _ = padded_batch()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, reference(ids).logits, atol=1e-6)
    bare = tmp_path / "bare"
    model.transformer.save_pretrained(bare)
    loaded = transformers.GPT2Model.from_pretrained(bare, attn_implementation="eager").eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).last_hidden_state, model.transformer(ids).last_hidden_state, atol=1e-5)


def test_conv1d_layout_round_trips():
    torch.manual_seed(0)
    state = {"h.0.attn.c_attn.weight": torch.randn(6, 18), "h.0.attn.c_attn.bias": torch.randn(18),
             "h.0.mlp.c_fc.weight": torch.randn(6, 10), "h.0.attn.bias": torch.ones(1, 1, 4, 4), "wte.weight":
             torch.randn(5, 6)}
    split = from_hf_layout(state)
    assert "h.0.attn.bias" not in split  # the old causal-mask buffer
    assert torch.equal(split["h.0.attn.c_attn.key.weight"], state["h.0.attn.c_attn.weight"][:, 6:12].t())
    assert torch.equal(split["h.0.mlp.c_fc.weight"], state["h.0.mlp.c_fc.weight"].t())
    back = to_hf_layout(split)
    assert set(back) == set(state) - {"h.0.attn.bias"}
    assert all(torch.equal(back[name], state[name]) for name in back)


@pytest.mark.parametrize("overrides, message", [
    (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx=True"),
    (dict(reorder_and_upcast_attn=True), "reorder_and_upcast_attn=True"),
    (dict(embd_pdrop=0.3), "embd_pdrop=0.3 differing from resid_pdrop"),
    (dict(n_embd=25), "not a multiple"),
])
def test_configs_the_blocks_cannot_compute_are_refused(overrides, message):
    values = reference_config().to_dict() | overrides
    with pytest.raises(ValueError, match=message):
        BertConfig.from_dict(values)


def test_training_from_scratch_lowers_the_loss():
    torch.manual_seed(0)
    config = BertConfig(model_type="gpt2", vocab_size=VOCAB, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=3, intermediate_size=48, max_position_embeddings=12, type_vocab_size=0,
                        norm_first=True, is_decoder=True, pad_token_id=None, hidden_act="gelu_new")
    model = GPT2LMHeadModel(config)
    ids = torch.arange(12).repeat(2, 1) % 3 + 10  # a repeating pattern: learnable in a few steps
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(12):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.lm_head.weight is model.transformer.embeddings.word_embeddings.weight
