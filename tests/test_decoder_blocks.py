"""The blocks as a decoder: causal self-attention, cross-attention and the key / value cache, against transformers'
BERT decoder (``is_decoder`` + ``add_cross_attention``) on a random checkpoint."""

import pytest
import torch
import transformers

from bertkit.config import BertConfig
from bertkit.model import BertModel
from bertkit.model.encoder import causal_mask


@pytest.fixture(scope="module")
def decoder_pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, is_decoder=True, add_cross_attention=True,
                                     attn_implementation="eager")
    reference = transformers.BertModel(config).eval()
    folder = tmp_path_factory.mktemp("decoder")
    reference.save_pretrained(folder)
    return reference, BertModel.from_pretrained(folder).eval()


def inputs():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 97, (2, 7), generator=generator)
    memory = torch.randn(2, 5, 32, generator=generator)
    memory_mask = torch.ones(2, 5, dtype=torch.long)
    memory_mask[1, 3:] = 0
    return ids, memory, memory_mask


def test_causal_mask_offsets_cached_positions():
    mask = causal_mask(2, 3, torch.float32, torch.device("cpu"))[0, 0]
    assert mask.shape == (2, 5)
    assert (mask[0, :4] == 0).all() and mask[0, 4] < -1e30  # position 3 sees 0…3
    assert (mask[1] == 0).all()  # position 4 sees everything before it


def test_decoder_matches_transformers(decoder_pair):
    reference, model = decoder_pair
    ids, memory, memory_mask = inputs()
    with torch.no_grad():
        expected = reference(ids, encoder_hidden_states=memory, encoder_attention_mask=memory_mask)
        got = model(ids, encoder_hidden_states=memory, encoder_attention_mask=memory_mask)
    assert torch.allclose(got.last_hidden_state, expected.last_hidden_state, atol=1e-5)
    assert torch.allclose(got.pooler_output, expected.pooler_output, atol=1e-5)


def test_causality_later_tokens_do_not_change_earlier_outputs(decoder_pair):
    _, model = decoder_pair
    ids, memory, memory_mask = inputs()
    changed = ids.clone()
    changed[:, 5:] = 3
    with torch.no_grad():
        a = model(ids, encoder_hidden_states=memory, encoder_attention_mask=memory_mask).last_hidden_state
        b = model(changed, encoder_hidden_states=memory, encoder_attention_mask=memory_mask).last_hidden_state
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-3)


def test_cached_decoding_equals_the_full_forward(decoder_pair):
    _, model = decoder_pair
    ids, memory, memory_mask = inputs()
    with torch.no_grad():
        full = model(ids, encoder_hidden_states=memory, encoder_attention_mask=memory_mask).last_hidden_state
        out = model(ids[:, :4], encoder_hidden_states=memory, encoder_attention_mask=memory_mask, use_cache=True)
        steps, cache = [out.last_hidden_state], out.past_key_values
        for t in range(4, 7):
            out = model(ids[:, t:t + 1], encoder_hidden_states=memory, encoder_attention_mask=memory_mask,
                        past_key_values=cache)
            steps.append(out.last_hidden_state)
    assert cache.length == 7
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_cache_reorder_keeps_chosen_rows(decoder_pair):
    _, model = decoder_pair
    ids, memory, memory_mask = inputs()
    with torch.no_grad():
        cache = model(ids[:, :4], encoder_hidden_states=memory, encoder_attention_mask=memory_mask,
                      use_cache=True).past_key_values
        cache.reorder(torch.tensor([1, 1]))
        step = model(ids[[1, 1], 4:5], encoder_hidden_states=memory[[1, 1]],
                     encoder_attention_mask=memory_mask[[1, 1]], past_key_values=cache).last_hidden_state
        full = model(ids[[1], :5], encoder_hidden_states=memory[[1]],
                     encoder_attention_mask=memory_mask[[1]]).last_hidden_state
    assert torch.allclose(step[0, 0], full[0, 4], atol=1e-5) and torch.allclose(step[1, 0], full[0, 4], atol=1e-5)


def test_decoder_bad_input_is_named(decoder_pair):
    _, model = decoder_pair
    ids, memory, memory_mask = inputs()
    with pytest.raises(ValueError, match="encoder_hidden_states"):
        model(ids)
    with pytest.raises(ValueError, match="encoder_hidden_states must be"):
        model(ids, encoder_hidden_states=memory[:, :, :8])
    cache = model(ids[:, :3], encoder_hidden_states=memory, use_cache=True).past_key_values
    with pytest.raises(ValueError, match="after 3 cached positions"):
        model(ids[:, 3:4], attention_mask=torch.ones(2, 1), encoder_hidden_states=memory, past_key_values=cache)
    encoder = BertModel(BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=16))
    with pytest.raises(ValueError, match="for decoders"):
        encoder(torch.ones(1, 3, dtype=torch.long), use_cache=True)
    with pytest.raises(ValueError, match="no cross-attention"):
        encoder(torch.ones(1, 3, dtype=torch.long), encoder_hidden_states=torch.zeros(1, 2, 16))
    with pytest.raises(ValueError, match="cannot decode"):
        BertConfig(is_decoder=True, attention="local")
