"""T5 against transformers' T5ForConditionalGeneration (test-only oracle): random tiny v1.0 (ReLU, tied head scaled
by d_model^-0.5) and v1.1 (gated GELU, head not scaled) models, folders both ways, padded batches, every weight
perturbed; cached decoding against the full decoder; greedy and beam generation token for token."""

from __future__ import annotations

import pytest
import torch
import transformers

from bertkit import AutoModelForSeq2SeqLM
from bertkit.model import T5ForConditionalGeneration
from bertkit.model.seq2seq import shift_tokens_right
from bertkit.t5_config import T5Config

SIZES = dict(vocab_size=61, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_decoder_layers=3, num_heads=4,
             relative_attention_num_buckets=8, relative_attention_max_distance=20, dropout_rate=0.0,
             decoder_start_token_id=0)
VERSIONS = {"v1.0": {}, "v1.1": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)}


def perturb(model: torch.nn.Module, std: float = 0.1, seed: int = 3) -> torch.nn.Module:
    """Every weight random (norms around 1), so a mapping mistake cannot hide behind zeros or ones."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.normal_(1.0 if tensor.dim() == 1 else 0.0, std if tensor.dim() == 2 else 0.2)
    return model


def batch(vocab: int = 61):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, vocab, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    labels = torch.randint(2, vocab, (3, 7), generator=generator)
    labels[0, 5:] = -100
    return ids, mask, labels


def written(tmp_path_factory, **changes):
    """Random T5 checkpoints written by transformers, and their reference models."""
    made = {}
    for name, extra in VERSIONS.items():
        torch.manual_seed(0)
        config = transformers.T5Config(**SIZES | changes, **extra)
        reference = perturb(transformers.T5ForConditionalGeneration._from_config(
            config, attn_implementation="eager")).eval()
        folder = tmp_path_factory.mktemp(name)
        reference.save_pretrained(folder)
        made[name] = (folder, reference)
    return made


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return written(tmp_path_factory)


@pytest.fixture(scope="module")
def even_folders(tmp_path_factory):
    """As many decoder layers as encoder layers: transformers 5's generate cannot cache an uneven T5."""
    return written(tmp_path_factory, num_decoder_layers=2)


def compare(model, reference):
    ids, mask, labels = batch()
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, labels=labels)
        got = model(ids, mask, labels=labels)
        target = shift_tokens_right(labels, 0, 0)
        bare = reference.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        ours_bare = model.model.encode(ids, mask)
    assert (got.logits - expected.logits).abs().max() <= 1e-5
    assert abs(got.loss.item() - expected.loss.item()) <= 1e-5
    assert (ours_bare - bare).abs().max() <= 1e-5
    assert target[0, 0] == 0  # T5's decoder starts from the pad token


@pytest.mark.parametrize("name", list(VERSIONS))
def test_transformers_folder_matches(folders, name):
    folder, reference = folders[name]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert isinstance(model, T5ForConditionalGeneration)
    assert model.loading_report.missing == [] and model.loading_report.unexpected == []
    compare(model, reference)


@pytest.mark.parametrize("gated, tied", [(False, True), (True, True), (True, False)])
def test_bertkit_folder_loads_in_transformers(gated, tied, tmp_path):
    extra = dict(hidden_act="gelu_new", gated_feed_forward=True) if gated else {}
    config = T5Config(vocab_size=61, hidden_size=32, attention_head_size=8, intermediate_size=37,
                      num_hidden_layers=2, decoder_layers=3, num_attention_heads=4, relative_attention_num_buckets=8,
                      relative_attention_max_distance=20, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                      activation_dropout=0.0, tie_word_embeddings=tied, **extra)
    model = perturb(T5ForConditionalGeneration(config), seed=4).eval()
    model.save_pretrained(tmp_path)
    reference = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path, attn_implementation="eager").eval()
    compare(model, reference)
    again = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert again.config.to_dict() == model.config.to_dict()
    compare(again, reference)


def test_cached_decoding_equals_the_full_decoder(folders):
    model = AutoModelForSeq2SeqLM.from_pretrained(folders["v1.1"][0])
    ids, mask, labels = batch()
    target = shift_tokens_right(labels, 0, 0)
    with torch.no_grad():
        full = model(ids, mask, target).logits
        memory = model.model.encode(ids, mask)
        out = model(encoder_outputs=memory, attention_mask=mask, decoder_input_ids=target[:, :3], use_cache=True)
        steps, cache = [out.logits], out.past_key_values
        for t in range(3, target.shape[1]):
            out = model(encoder_outputs=memory, attention_mask=mask, decoder_input_ids=target[:, t:t + 1],
                        past_key_values=cache, use_cache=True)
            steps.append(out.logits)
    assert (torch.cat(steps, dim=1) - full).abs().max() <= 1e-5


@pytest.mark.parametrize("name", list(VERSIONS))
@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_matches_transformers(even_folders, name, num_beams):
    folder, reference = even_folders[name]
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(2, 60, (4, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    ids[1, 5:] = 0
    expected = reference.generate(input_ids=ids, attention_mask=mask, num_beams=num_beams, max_new_tokens=12,
                                  do_sample=False, length_penalty=1.0, min_length=0, early_stopping=True)
    got = model.generate(ids, mask, num_beams=num_beams, max_new_tokens=12, early_stopping=True)
    assert got.tolist() == expected.tolist()
    assert (got[:, 0] == 0).all() and len({tuple(row) for row in got.tolist()}) > 1


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="one dropout_rate"):
        T5Config(hidden_dropout_prob=0.1, activation_dropout=0.0)
    with pytest.raises(ValueError, match="norm_first"):
        T5Config.from_dict(dict(model_type="t5", norm_first=False))
    with pytest.raises(ValueError, match="feed_forward_proj"):
        T5Config.from_dict(dict(model_type="t5", feed_forward_proj="fancy-gelu"))


@pytest.mark.parametrize("preset, hf", [
    ("small", dict()),
    ("base", dict(d_model=768, d_ff=3072, num_layers=12, num_heads=12)),
    ("large", dict(d_model=1024, d_ff=4096, num_layers=24, num_heads=16)),
    ("v1_1-small", dict(d_ff=1024, num_layers=8, num_heads=6, feed_forward_proj="gated-gelu",
                        tie_word_embeddings=False)),
    ("v1_1-base", dict(d_model=768, d_ff=2048, num_layers=12, num_heads=12, feed_forward_proj="gated-gelu",
                       tie_word_embeddings=False)),
])
def test_params_presets_count_as_transformers(preset, hf, capsys):
    from bertkit.cli import main

    main(["params", "--arch", "t5", "--preset", preset])
    total = int(capsys.readouterr().out.strip().splitlines()[-1].split()[-1].replace(",", ""))
    with torch.device("meta"):
        reference = transformers.T5ForConditionalGeneration(transformers.T5Config(**hf))
    if not hf.get("tie_word_embeddings", True):  # transformers 5 ties every T5 head; v1.1's checkpoints do not
        reference.lm_head.weight = torch.nn.Parameter(torch.empty_like(reference.lm_head.weight))
    assert total == sum(p.numel() for p in reference.parameters())
    assert total == {"small": 60_506_624, "base": 222_903_552, "large": 737_668_096}.get(preset, total)


def test_params_counts_a_t5_folder(folders, capsys):
    from bertkit.cli import main

    folder, reference = folders["v1.0"]
    main(["params", "--model", str(folder)])
    total = int(capsys.readouterr().out.strip().splitlines()[-1].split()[-1].replace(",", ""))
    assert total == sum(p.numel() for p in reference.parameters())


def test_t5_model_matches_transformers(tmp_path):
    """The bare T5Model (no head) both ways: the decoder's last hidden state on a padded batch."""
    from bertkit import AutoModel
    from bertkit.model import T5Model

    torch.manual_seed(0)
    reference = perturb(transformers.T5Model._from_config(
        transformers.T5Config(**SIZES, feed_forward_proj="gated-gelu"), attn_implementation="eager")).eval()
    reference.save_pretrained(tmp_path / "hf")
    model = AutoModel.from_pretrained(tmp_path / "hf")
    assert isinstance(model, T5Model) and model.loading_report.missing == [] == model.loading_report.unexpected
    ids, mask, labels = batch()
    target = shift_tokens_right(labels, 0, 0)
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, decoder_input_ids=target).last_hidden_state
        assert (model(ids, mask, target).last_hidden_state - expected).abs().max() <= 1e-5
        model.save_pretrained(tmp_path / "ours")
        again = transformers.T5Model.from_pretrained(tmp_path / "ours", attn_implementation="eager").eval()
        assert (again(input_ids=ids, attention_mask=mask, decoder_input_ids=target).last_hidden_state
                - expected).abs().max() <= 1e-5
