"""The encoder-decoder Transformer against its oracles: ``torch.nn.Transformer`` given the same weights and embedded
inputs (post-LN and pre-LN), transformers' BART and Marian on random checkpoints (logits and loss), folders both ways,
cached decoding, bad input."""

import json

import pytest
import torch
import transformers
from torch import nn

from bertkit import AutoModelForSeq2SeqLM
from bertkit.config import Seq2SeqConfig
from bertkit.model import BertModel
from bertkit.model.embeddings import sinusoidal_table
from bertkit.model.nn_transformer import load_nn_transformer, seq2seq_config
from bertkit.model.seq2seq import TransformerForConditionalGeneration, TransformerModel, shift_tokens_right

SIZES = dict(vocab_size=53, d_model=24, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
             decoder_attention_heads=2, encoder_ffn_dim=37, decoder_ffn_dim=29, max_position_embeddings=20,
             dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def randomize(model: nn.Module) -> nn.Module:
    """Non-trivial biases and LayerNorms (a fresh model has zeros and ones, which hide mapping mistakes)."""
    torch.manual_seed(3)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.dim() == 1 or "final_logits_bias" in name:
                tensor.normal_(0, 0.2)
    return model


def batch(vocab=53, pad=1):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab - 1, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    ids = ids.masked_fill(mask == 0, pad)
    labels = torch.randint(3, vocab - 1, (3, 7), generator=generator)
    labels[0, 5:] = -100
    return ids, mask, labels


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Random BART and Marian checkpoints written by transformers, and their reference models."""
    torch.manual_seed(0)
    made = {}
    for name, cls, config in (
        ("bart", transformers.BartForConditionalGeneration,
         transformers.BartConfig(**SIZES, scale_embedding=True)),
        ("marian", transformers.MarianMTModel,
         transformers.MarianConfig(**SIZES, activation_function="swish", scale_embedding=True, pad_token_id=52,
                                   decoder_start_token_id=52, eos_token_id=0)),
    ):
        reference = randomize(cls._from_config(config, attn_implementation="eager")).eval()
        folder = tmp_path_factory.mktemp(name)
        reference.save_pretrained(folder)
        made[name] = (folder, reference)
    return made


@pytest.mark.parametrize("norm_first", [False, True])
def test_matches_torch_nn_transformer(norm_first):
    torch.manual_seed(0)
    reference = nn.Transformer(d_model=24, nhead=4, num_encoder_layers=2, num_decoder_layers=3, dim_feedforward=37,
                               dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    randomize(reference)
    model = TransformerModel(seq2seq_config(reference.state_dict(), nhead=4, norm_first=norm_first, vocab_size=53,
                                            pad_token_id=1)).eval()
    load_nn_transformer(model, reference.state_dict())
    ids, mask, labels = batch()
    target = labels.clamp(min=3)
    target_mask = torch.ones_like(target)
    target_mask[1, 4:] = 0
    with torch.no_grad():
        ours = model(ids, mask, target, target_mask)
        src, tgt = model.encoder.embeddings(ids, None), model.decoder.embeddings(target, None)
        causal = nn.Transformer.generate_square_subsequent_mask(target.shape[1])
        expected = reference(src, tgt, tgt_mask=causal, src_key_padding_mask=mask == 0,
                             tgt_key_padding_mask=target_mask == 0, memory_key_padding_mask=mask == 0)
    real = target_mask.bool()  # nn.Transformer's output at padded target positions is not defined the same way
    assert torch.allclose(ours.last_hidden_state[real], expected[real], atol=1e-5)


def test_nn_transformer_of_another_shape_is_refused():
    reference = nn.Transformer(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=8)
    model = TransformerModel(Seq2SeqConfig(vocab_size=20, hidden_size=16, num_attention_heads=2, num_hidden_layers=2,
                                           intermediate_size=8))
    with pytest.raises(ValueError, match="does not match this model's config"):
        load_nn_transformer(model, reference.state_dict())


@pytest.mark.parametrize("name", ["bart", "marian"])
def test_matches_transformers(folders, name):
    folder, reference = folders[name]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert model.loading_report.missing == [] and model.loading_report.unexpected == []
    pad = model.config.pad_token_id
    ids, mask, labels = batch(pad=pad)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, labels=labels)
        got = model(ids, mask, labels=labels)
        target = shift_tokens_right(labels, pad, model.config.decoder_start_token_id)
        bare = reference.model(input_ids=ids, attention_mask=mask, decoder_input_ids=target).last_hidden_state
        ours_bare = model.model(ids, mask, target).last_hidden_state
    assert torch.allclose(got.logits, expected.logits, atol=1e-5)
    assert abs(got.loss.item() - expected.loss.item()) < 1e-5
    assert torch.allclose(ours_bare, bare, atol=1e-5)  # BartModel / MarianModel


def test_bart_model_shifts_the_input_by_default(folders):
    folder, reference = folders["bart"]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    ids, mask, _ = batch()
    with torch.no_grad():
        assert torch.allclose(model.model(ids, mask).last_hidden_state,
                              reference.model(input_ids=ids, attention_mask=mask).last_hidden_state, atol=1e-5)


def test_marian_positions_are_sines_then_cosines():
    table = sinusoidal_table(11, 8, "halves")
    reference = transformers.models.marian.modeling_marian.MarianSinusoidalPositionalEmbedding(11, 8)
    assert torch.allclose(table, reference.create_weight(), atol=1e-6)


@pytest.mark.parametrize("name", ["bart", "marian"])
def test_saved_folder_loads_in_transformers(folders, name, tmp_path):
    folder, reference = folders[name]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    model.save_pretrained(tmp_path)
    reloaded = type(reference).from_pretrained(tmp_path).eval()
    ids, mask, labels = batch(pad=model.config.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids, attention_mask=mask, labels=labels).logits,
                              model(ids, mask, labels=labels).logits, atol=1e-5)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [type(reference).__name__]


def test_own_transformer_round_trips(tmp_path):
    config = Seq2SeqConfig(vocab_size=31, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                           decoder_layers=2, intermediate_size=24, share_encoder_decoder_embeddings=False,
                           tie_word_embeddings=False, pad_token_id=0, decoder_start_token_id=1)
    model = randomize(TransformerForConditionalGeneration(config)).eval()
    model.save_pretrained(tmp_path)
    again = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert again.config == config and again.loading_report.missing == []
    ids, mask, labels = batch(vocab=31, pad=0)
    with torch.no_grad():
        assert torch.equal(again(ids, mask, labels=labels).logits, model(ids, mask, labels=labels).logits)


def test_teacher_forcing_shifts_labels_right():
    labels = torch.tensor([[5, 6, 7, -100]])
    assert shift_tokens_right(labels, 1, 2).tolist() == [[2, 5, 6, 7]]
    assert shift_tokens_right(torch.tensor([[5, -100, -100]]), 1, 2).tolist() == [[2, 5, 1]]


def test_cached_decoding_equals_the_full_decoder(folders):
    model = AutoModelForSeq2SeqLM.from_pretrained(folders["bart"][0])
    ids, mask, labels = batch()
    target = shift_tokens_right(labels, 1, 2)
    with torch.no_grad():
        full = model(ids, mask, target).logits
        memory = model.model.encode(ids, mask)
        out = model(encoder_outputs=memory, attention_mask=mask, decoder_input_ids=target[:, :3], use_cache=True)
        steps, cache = [out.logits], out.past_key_values
        for t in range(3, target.shape[1]):
            out = model(encoder_outputs=memory, attention_mask=mask, decoder_input_ids=target[:, t:t + 1],
                        past_key_values=cache, use_cache=True)
            steps.append(out.logits)
    assert cache.length == target.shape[1]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_bad_input_is_named(folders, tmp_path):
    folder, _ = folders["bart"]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    too_long = torch.full((1, 21), 5)
    with pytest.raises(ValueError, match="only 20 positions"):
        model(too_long, labels=torch.full((1, 3), 5))
    with pytest.raises(ValueError, match="decoder_input_ids or labels"):
        model(torch.full((1, 3), 5))
    with pytest.raises(ValueError, match="AutoModelForSeq2SeqLM"):
        BertModel.from_pretrained(folder)
    values = json.loads((folder / "config.json").read_text())
    with pytest.raises(ValueError, match="encoder_layerdrop"):
        Seq2SeqConfig.from_dict(values | {"encoder_layerdrop": 0.1})
    with pytest.raises(ValueError, match="decoder_vocab_size"):
        Seq2SeqConfig.from_dict(values | {"model_type": "marian", "decoder_vocab_size": 7})
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        Seq2SeqConfig(vocab_size=10, decoder_start_token_id=12)


@pytest.fixture(scope="module")
def peaked_bart(tmp_path_factory):
    """A random BART whose logits are far from uniform (large weights, a push towards EOS), so greedy and beam
    search take different, early-ending paths."""
    torch.manual_seed(0)
    reference = transformers.BartForConditionalGeneration._from_config(
        transformers.BartConfig(**SIZES), attn_implementation="eager").eval()
    with torch.no_grad():
        for tensor in reference.parameters():
            if tensor.dim() == 2:
                tensor.normal_(0, 0.3)
        reference.final_logits_bias.normal_(0, 1.0)
        reference.final_logits_bias[0, 2] += 1.5
    folder = tmp_path_factory.mktemp("peaked")
    reference.save_pretrained(folder)
    return reference, AutoModelForSeq2SeqLM.from_pretrained(folder)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_matches_transformers(peaked_bart, num_beams):
    reference, model = peaked_bart
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(3, 50, (4, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    ids[1, 5:] = 1
    expected = reference.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_new_tokens=12,
                                  do_sample=False, forced_eos_token_id=None, forced_bos_token_id=None,
                                  no_repeat_ngram_size=0, length_penalty=1.0, min_length=0, early_stopping=True)
    got = model.generate(ids, mask, num_beams=num_beams, max_new_tokens=12, early_stopping=True)
    assert got.tolist() == expected.tolist()
    assert (got[:, 0] == 2).all()  # BART's decoder starts from its decoder_start_token_id


def test_generate_with_and_without_cache_agree(peaked_bart):
    _, model = peaked_bart
    ids = torch.randint(3, 50, (2, 6), generator=torch.Generator().manual_seed(2))
    assert model.generate(ids, num_beams=2, max_new_tokens=8).tolist() == \
        model.generate(ids, num_beams=2, max_new_tokens=8, use_cache=False).tolist()


def test_generate_bad_input_is_named(peaked_bart):
    _, model = peaked_bart
    with pytest.raises(ValueError, match="only 20 positions"):
        model.generate(torch.full((1, 25), 5), max_new_tokens=5)
    with pytest.raises(ValueError, match="max_new_tokens=30"):
        model.generate(torch.full((1, 4), 5), max_new_tokens=30)
    with pytest.raises(ValueError, match="token ids must lie"):
        model.generate(torch.full((1, 4), 99), max_new_tokens=5)
